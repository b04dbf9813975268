"""The HTTP side: a standard-library threaded server, routing, security headers and static files.

Why the standard library: the viewer serves a handful of GET pages to one person on their own machine,
so `http.server` is enough and adds no dependency; Jinja2 (already a dependency, for the card) renders
the pages with autoescaping on, so model text is always escaped.

Every response carries a Content-Security-Policy that allows nothing but this server's own scripts,
styles, fonts and images: the page can make no request elsewhere, and an injected inline script would
not run even if escaping failed. Bound to loopback, the server also refuses requests whose Host header
names another site (DNS rebinding).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from distill.errors import ConfigError
from distill.viewer.pages import Pages
from distill.viewer.query import DEFAULT_SIZE, PAGE_SIZES, SORTS, parse_query
from distill.viewer.source import EvalSource, NotFound, open_source
from distill.viewer.text import pygments_css

__all__ = ["CSP", "DEFAULT_HOST", "DEFAULT_PORT", "Viewer", "is_loopback"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent  # templates/ and static/ ship beside this file, in a wheel too
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self'; font-src 'self'; connect-src 'none'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The content types of the files in static/ (no change to the process-wide mimetypes table).
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Viewer:
    """The viewer of one run or eval directory, bound to a port; `serve_forever()` or `start()` serves it.

    Opening reads the run's index (a one-line StageError/InputError when RUN is not a run); binding a
    port in use is a ConfigError that suggests `--port 0`.
    """

    def __init__(self, root: Path | str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.root = Path(root)
        self.pages = Pages(open_source(self.root))
        self.templates = _templates()
        self.static = _static_files()
        self.code_css = pygments_css().encode()
        handler = type("Handler", (_Handler,), {"viewer": self})
        try:
            server_class = _ThreadingHTTPServer6 if ":" in host else ThreadingHTTPServer
            self.server = server_class((host.strip("[]"), port), handler, bind_and_activate=True)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is in use: pass --port 0 to pick a free port"
                ) from e
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        self.server.daemon_threads = True
        self.host, self.port = host, int(self.server.server_address[1])
        self.loopback = is_loopback(host)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        bound = self.host.strip("[]")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(bound, bound)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def notices(self) -> list[str]:
        """What the user should know about the run as opened (being written, unreadable shards)."""
        source = self.pages.source
        if isinstance(source, EvalSource):
            return [*source.notices, *(f"{name}: {n}" for name, r in source.runs.items() for n in r.notices)]
        return list(source.notices)

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.5)

    def start(self) -> Viewer:
        """Serve from a background thread (tests, benchmarks); `close()` stops it."""
        self._thread = threading.Thread(target=self.serve_forever, name="distill-view", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ── routing ────────────────────────────────────────────────────────────
    def respond(self, target: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of `target` (path and query)."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        path = parts.path
        if path == "/favicon.ico":  # browsers ask for it; answering 204 keeps their console clean
            return 204, "image/x-icon", b""
        if path.startswith("/static/"):
            return self._static(path[len("/static/") :])
        run = _one(query, "run")
        source = self.pages.pick(run)[0]
        try:
            if path == "/plot":
                return 200, "image/png", self.pages.plot(run, _one(query, "name")).read_bytes()
            if path == "/":
                return self._page("overview.html", self.pages.overview(run), run)
            if path == "/samples":
                return self._page("samples.html", self.pages.samples(parse_query(query, source)), run)
            ident, sample = _one(query, "id"), _one(query, "s")
            if path == "/sample":  # the list it was opened from rides along in the URL
                listing = parse_query({k: v for k, v in query.items() if k not in ("id", "s")}, source)
                return self._page("sample.html", self.pages.sample(listing, ident, sample), run)
            if path == "/prompt":
                return self._page("prompt.html", self.pages.prompt(run, ident), run)
            if path == "/dup":
                return self._page("dup.html", self.pages.duplicate(run, ident, sample), run)
            if path == "/contam":
                return self._page("contam.html", self.pages.contamination(run, ident, sample), run)
            raise NotFound(f"no page {path[:80]!r}")
        except NotFound as e:
            return self._page("error.html", {"message": str(e), "notices": []}, run, status=404)

    def _page(
        self, name: str, context: dict[str, Any], run: str, status: int = 200
    ) -> tuple[int, str, bytes]:
        runs = self.pages.run_names()
        current = run if run in runs else (runs[0] if runs and name != "overview.html" else "")

        def link(path: str, **params: object) -> str:
            merged = {"run": current, **params} if current else dict(params)
            clean = {k: str(v) for k, v in merged.items() if v is not None and v != ""}
            return f"{path}?{urlencode(clean)}" if clean else path

        html = self.templates.get_template(name).render(
            **context,
            link=link,
            runs=runs,
            current_run=current,
            root=self.root.name or str(self.root),
            page_sizes=PAGE_SIZES,
            default_size=DEFAULT_SIZE,
            sorts=SORTS,
        )
        return status, "text/html; charset=utf-8", html.encode()

    def _static(self, name: str) -> tuple[int, str, bytes]:
        if name == "pygments.css":
            return 200, CONTENT_TYPES[".css"], self.code_css
        path = self.static.get(name)  # only files shipped in the package: no path reaches outside it
        if path is None:
            return 404, "text/plain; charset=utf-8", b"not found"
        return 200, CONTENT_TYPES.get(path.suffix, "text/plain; charset=utf-8"), path.read_bytes()


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    viewer: Viewer
    server_version = "distill-view"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _refuse(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"the viewer is read-only", True
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _serve(self, *, body: bool) -> None:
        if self.viewer.loopback and not _is_local_host(self.headers.get("Host", ""), self.viewer.port):
            self._send(HTTPStatus.MISDIRECTED_REQUEST, "text/plain; charset=utf-8", b"unknown host", body)
            return
        try:
            status, kind, data = self.viewer.respond(self.path)
        except Exception:  # the request boundary: log it, answer 500, keep serving the other requests
            log.exception("distill view: %s failed", self.path[:200])
            status, kind, data = 500, "text/plain; charset=utf-8", b"internal error: see the terminal"
        self._send(status, kind, data, body)

    def _send(self, status: int, kind: str, data: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=3600" if self.path.startswith("/static/") else "no-store")
        for key, value in HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("distill view: " + format, *args)


def _is_local_host(header: str, port: int) -> bool:
    host, _, given = header.rpartition(":") if not header.endswith("]") else (header, "", "")
    return is_loopback(host or header) and given in ("", str(port))


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[-1]


def _templates() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every template, whatever its name: model text is always escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    return env


def _static_files() -> dict[str, Path]:
    root = HERE / "static"
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def _num(value: object) -> str:
    """A cell: ✓ / ✗ for verdicts, — for null, thousands separators, 3 significant digits for floats."""
    if value is None or isinstance(value, bool):
        return {True: "✓", False: "✗", None: "—"}[value]
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
