"""Fixtures for the dataset/card/push tests: a realistic run, and a local HTTP server standing in for the Hub.

`FakeHub` implements the endpoints huggingface_hub 2.4 calls for `whoami`, `create_repo`,
`repo_info`, `create_branch`, `list_repo_files`, README validation, `preupload`, the LFS batch API
(basic transfer, with verify) and `commit` (NDJSON: regular files, LFS files, deletions). It keeps
what it receives (repos, files per revision, commits, requests) and can fail on purpose
(`fail_next[(method, kind)] = [503, …]`). Xet uploads are turned off for the test (the fake hub has no
CAS server), so large files take the LFS path the Hub still serves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from distill.run import RunDir
from tests.plugins.runs import make_run

TOKEN = "hf_TestTokenDoNotLeak0123456789"
USER = "test-user"
ORGS = ("test-org",)


# ── the fake Hub ──────────────────────────────────────────────────────────
@dataclass
class FakeRepo:
    repo_id: str
    repo_type: str
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict[str, Any]] = field(default_factory=list)


class FakeHub:
    """State of the stand-in Hub; `url` is the endpoint to give huggingface_hub."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, kind, path)
        self.auth_headers: list[str | None] = []
        self.fail_next: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.lock = threading.Lock()
        self.url = ""

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id].branches[revision]

    def materialize(self, repo_id: str, folder: Path, revision: str = "main") -> Path:
        """Write the repo's files at `revision` into `folder` (what a clone would hold)."""
        for path, content in self.files(repo_id, revision).items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return folder

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.requests]


_ROUTES = [  # (method, kind, pattern) matched against the URL path
    ("GET", "whoami", r"/api/whoami-v2"),
    ("POST", "create", r"/api/repos/create"),
    ("POST", "validate-yaml", r"/api/validate-yaml"),
    ("POST", "preupload", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)"),
    ("POST", "commit", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)"),
    ("POST", "branch", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/branch/(?P<rev>[^/]+)"),
    ("GET", "tree", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<sub>/.*)?"),
    ("GET", "info", r"/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)(/revision/(?P<rev>[^/]+))?"),
    ("POST", "lfs-batch", r"/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch"),
    ("PUT", "lfs-upload", r"/_lfs/(?P<oid>[0-9a-f]{64})"),
    ("HEAD", "resolve", r"/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)"),
    ("GET", "resolve", r"/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)"),
    ("POST", "lfs-verify", r"/_lfs/(?P<oid>[0-9a-f]{64})/verify"),
]


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        # ── plumbing ──
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
            raw = isinstance(payload, bytes)  # a file's bytes (resolve), else a JSON body
            data = payload if raw else json.dumps(payload if payload is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if raw else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            body = self._body()
            for m, kind, pattern in _ROUTES:  # noqa: B007 - `kind` is used after the loop
                match = re.fullmatch(pattern, path)
                if m == method and match:
                    break
            else:
                self._send(404, {"error": f"fake hub: no route for {method} {path}"})
                return
            with hub.lock:
                hub.requests.append((method, kind, path))
                hub.auth_headers.append(self.headers.get("Authorization"))
                planned = hub.fail_next.get((method, kind))
                status = planned.pop(0) if planned else None
            if status is not None:
                self._send(status, {"error": f"fake hub: injected {status}"})
                return
            if kind not in ("lfs-upload",) and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": "Invalid credentials in Authorization header"})
                return
            with hub.lock:
                status, payload, headers = getattr(self, "_" + kind.replace("-", "_"))(
                    match.groupdict(), query, body
                )
            self._send(status, payload, headers)

        # ── endpoints ──
        def _whoami(self, groups: dict, query: dict, body: bytes) -> tuple:
            orgs = [{"name": o, "type": "org"} for o in ORGS]
            return (
                200,
                {
                    "type": "user",
                    "name": USER,
                    "orgs": orgs,
                    "auth": {"type": "access_token", "accessToken": {"role": "write"}},
                },
                None,
            )

        def _create(self, groups: dict, query: dict, body: bytes) -> tuple:
            req = json.loads(body)
            repo_id = f"{req.get('organization') or USER}/{req['name']}"
            repo_type = req.get("type") or "model"
            if req.get("organization") not in (None, *ORGS):
                return 403, {"error": "You don't have the rights to create a repo under this namespace"}, None
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            if repo_id in hub.repos:
                return (
                    409,
                    {"error": "You already created this repo", "url": f"{hub.url}/{prefix}{repo_id}"},
                    None,
                )
            hub.repos[repo_id] = FakeRepo(repo_id, repo_type, private=req.get("visibility") == "private")
            return 200, {"url": f"{hub.url}/{prefix}{repo_id}", "name": repo_id, "id": repo_id}, None

        def _repo(self, groups: dict) -> FakeRepo | None:
            repo = hub.repos.get(unquote(groups["repo"]))
            return repo if repo is not None and repo.repo_type == groups["type"] else None

        def _info(self, groups: dict, query: dict, body: bytes) -> tuple:
            repo = self._repo(groups)
            if repo is None:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            rev = unquote(groups.get("rev") or "main")
            if rev not in repo.branches:
                return 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
            sha = repo.commits[-1]["oid"] if repo.commits else "0" * 40
            return (
                200,
                {
                    "id": repo.repo_id,
                    "private": repo.private,
                    "sha": sha,
                    "siblings": [{"rfilename": p} for p in sorted(repo.branches[rev])],
                },
                None,
            )

        def _branch(self, groups: dict, query: dict, body: bytes) -> tuple:
            repo = self._repo(groups)
            if repo is None:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            name = unquote(groups["rev"])
            if name in repo.branches:
                return 409, {"error": "Reference already exists"}, None
            repo.branches[name] = dict(repo.branches["main"])
            return 200, {}, None

        def _tree(self, groups: dict, query: dict, body: bytes) -> tuple:
            repo = self._repo(groups)
            rev = unquote(groups["rev"])
            if repo is None or rev not in repo.branches:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            entries = [
                {"type": "file", "path": p, "size": len(c), "oid": hashlib.sha1(c).hexdigest()}
                for p, c in sorted(repo.branches[rev].items())
            ]
            return 200, entries, None

        def _resolve(self, groups: dict, query: dict, body: bytes) -> tuple:
            repo = self._repo(groups)
            rev = unquote(groups["rev"])
            files = repo.branches.get(rev) if repo else None
            if files is None or groups["file"] not in files:
                return 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"}
            content = files[groups["file"]]
            etag = hashlib.sha1(content).hexdigest()
            # a pinned commit resolves to itself (snapshot_download files the download under it)
            commit = rev if re.fullmatch(r"[0-9a-f]{40}", rev) else "0" * 40
            return 200, content, {"ETag": f'"{etag}"', "X-Repo-Commit": commit}

        def _validate_yaml(self, groups: dict, query: dict, body: bytes) -> tuple:
            from huggingface_hub import DatasetCard

            content = json.loads(body)["content"]
            try:
                DatasetCard(content)
            except ValueError as e:
                return 400, {"errors": [{"message": str(e)}], "warnings": []}, None
            return 200, {"errors": [], "warnings": []}, None

        def _preupload(self, groups: dict, query: dict, body: bytes) -> tuple:
            if self._repo(groups) is None:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            files = json.loads(body)["files"]
            # like the Hub's default .gitattributes: Parquet, PNG and anything big goes through LFS
            return (
                200,
                {
                    "files": [
                        {
                            "path": f["path"],
                            "shouldIgnore": False,
                            "oid": None,
                            "uploadMode": "lfs"
                            if f["path"].endswith((".parquet", ".png")) or f["size"] > 10_000_000
                            else "regular",
                        }
                        for f in files
                    ]
                },
                None,
            )

        def _lfs_batch(self, groups: dict, query: dict, body: bytes) -> tuple:
            objects = []
            for obj in json.loads(body)["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    entry["actions"] = {
                        "upload": {"href": f"{hub.url}/_lfs/{obj['oid']}"},
                        "verify": {"href": f"{hub.url}/_lfs/{obj['oid']}/verify"},
                    }
                objects.append(entry)
            return 200, {"transfer": "basic", "objects": objects}, None

        def _lfs_upload(self, groups: dict, query: dict, body: bytes) -> tuple:
            if hashlib.sha256(body).hexdigest() != groups["oid"]:
                return 400, {"error": "sha256 mismatch"}, None
            hub.lfs[groups["oid"]] = body
            return 200, {}, None

        def _lfs_verify(self, groups: dict, query: dict, body: bytes) -> tuple:
            return (200, {}, None) if groups["oid"] in hub.lfs else (404, {"error": "object missing"}, None)

        def _commit(self, groups: dict, query: dict, body: bytes) -> tuple:
            repo = self._repo(groups)
            rev = unquote(groups["rev"])
            if repo is None or rev not in repo.branches:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            files = dict(repo.branches[rev])
            header: dict = {}
            for line in body.splitlines():
                item = json.loads(line)
                value = item["value"]
                if item["key"] == "header":
                    header = value
                elif item["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        return 422, {"error": f"LFS object {value['oid']} was never uploaded"}, None
                    files[value["path"]] = hub.lfs[value["oid"]]
                elif item["key"] == "deletedFile":
                    files.pop(value["path"], None)
                elif item["key"] == "deletedFolder":
                    files = {
                        p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")
                    }
            oid = hashlib.sha1(f"{repo.repo_id}{len(repo.commits)}".encode()).hexdigest()
            repo.branches[rev] = files
            repo.commits.append(
                {
                    "oid": oid,
                    "summary": header.get("summary"),
                    "revision": rev,
                    "description": header.get("description"),
                    "files": sorted(files),
                }
            )
            prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
            return (
                200,
                {
                    "success": True,
                    "commitOid": oid,
                    "commitUrl": f"{hub.url}/{prefix}{repo.repo_id}/commit/{oid}",
                    "pullRequestUrl": None,
                },
                None,
            )

    return Handler


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A Hub on 127.0.0.1; huggingface_hub is pointed at it, online, without Xet, and with no stored login."""
    from huggingface_hub import constants

    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # huggingface_hub reads these at import time: set the module constants, not only the environment
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-login" / "stored_tokens"))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def distilled_run(tmp_path: Path, shared_data: Path) -> RunDir:
    """A run that went through generate, verify, filter and decontamination (840 samples, 2 sources)."""
    return make_run(tmp_path / "run", shared_data)
