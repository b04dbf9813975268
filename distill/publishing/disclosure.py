"""What a published file may say about the machine that made it: no paths, no private hosts, no secrets.

The local `run.yaml` keeps full values (a run must resume from it), but what leaves the machine —
the data card, the pushed `run.yaml` and `stats.json` — is the *public view* of the same settings:

- a local path becomes its file name (`/home/ana/data/problems.jsonl` → `problems.jsonl`); a Hub id
  (`AI-MO/NuminaMath-1.5@rev`) is kept, since it is public by nature;
- an endpoint becomes the provider's host when it is a well-known public API (`api.deepseek.com`),
  `local` for loopback, and `private endpoint` for anything else (a cluster node, a VPN name, an IP);
- secrets are stripped as everywhere else (`scrub`).

`card.show_paths` / `card.show_endpoints` opt back in. `find_leaks` is the last guard before a push:
it looks in the text about to leave for this machine's home folder, host name, working folder and
secret-looking environment values, so a hand-edited card or a new setting cannot leak unnoticed.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from distill.config import redact

__all__ = ["Leak", "PublicView", "find_leaks", "public_endpoint", "public_path", "scrub"]

# Hosts of public inference APIs: shown as they are (a reader may want to know the provider).
PUBLIC_API_HOSTS = frozenset(
    {
        "api.deepseek.com",
        "api.openai.com",
        "api.anthropic.com",
        "api.together.xyz",
        "api.together.ai",
        "api.fireworks.ai",
        "api.groq.com",
        "api.mistral.ai",
        "api.x.ai",
        "api.cerebras.ai",
        "api.sambanova.ai",
        "api.hyperbolic.xyz",
        "api.novita.ai",
        "api.deepinfra.com",
        "api.perplexity.ai",
        "openrouter.ai",
        "generativelanguage.googleapis.com",
        "integrate.api.nvidia.com",
        "router.huggingface.co",
        "api-inference.huggingface.co",
        "huggingface.co",
        "dashscope.aliyuncs.com",
        "dashscope-intl.aliyuncs.com",
        "api.moonshot.ai",
        "api.moonshot.cn",
        "open.bigmodel.cn",
    }
)
LOCAL = "local"
PRIVATE = "private endpoint"
# Free text a user writes *for* the card: never rewritten.
FREE_TEXT_KEYS = frozenset(
    {
        "pretty_name",
        "description",
        "system",
        "math_instruction",
        "code_instruction",
        "choice_instruction",
        "commit_message",
    }
)
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")
_TOKEN_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|(?:ghp|gho|xox[bp])[-_A-Za-z0-9]{8,})")
_URL_USERINFO = re.compile(r"(https?://)[^/@\s]+@")


def scrub(value: Any) -> Any:
    """`redact` plus removal of token-shaped strings and credentials inside URLs."""
    value = redact(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _URL_USERINFO.sub(r"\1[redacted]@", _TOKEN_LIKE.sub("[redacted]", value))
    return value


def public_endpoint(url: str) -> str:
    """The public form of an endpoint URL: a public provider's host, `local`, or `private endpoint`."""
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:  # not a URL after all (e.g. `[redacted]` where credentials were)
        return PRIVATE
    if host in PUBLIC_API_HOSTS or any(host.endswith("." + h) for h in ("huggingface.co", "hf.space")):
        return host
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return LOCAL
    try:
        if ipaddress.ip_address(host).is_loopback:
            return LOCAL
    except ValueError:
        pass
    return PRIVATE


def public_path(value: str, *, cwd: Path | None = None) -> str:
    """A local path's file name; anything that is not a local path (a Hub id, a model name) unchanged."""
    if not value or "\n" in value or _URL.match(value):
        return value
    looks_local = value.startswith(("/", "~", "./", "../", ".\\", "..\\")) or bool(
        re.match(r"^[A-Za-z]:[\\/]", value)
    )
    if not looks_local and ("/" in value or "\\" in value):
        # `org/name` is a Hub id unless such a folder or file exists here.
        looks_local = ((cwd or Path.cwd()) / value).exists()
    if not looks_local:
        return value
    name = re.split(r"[\\/]", value.rstrip("/\\"))[-1]
    return name or "."


@dataclass(frozen=True)
class PublicView:
    """How much of the machine a published file may show (`card.show_paths`, `card.show_endpoints`)."""

    show_paths: bool = False
    show_endpoints: bool = False

    def apply(self, data: Any, *, key: str = "") -> Any:
        """A copy of `data` (run.yaml, stats.json) as it may be published: secrets, paths and hosts removed."""
        return self._walk(scrub(data), key)

    def _walk(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self._walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, key) for v in value]
        if not isinstance(value, str) or key in FREE_TEXT_KEYS:
            return value
        if _URL.match(value) and value.split(":", 1)[0].lower() in ("http", "https", "ws", "wss"):
            return value if self.show_endpoints else public_endpoint(value)
        return value if self.show_paths else public_path(value)


@dataclass(frozen=True)
class Leak:
    """One private detail found in a file about to be published."""

    file: str
    line: int
    what: str  # "home folder", "host name", "working folder", "environment value of NAME"

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.what}"


def find_leaks(
    files: dict[str, str], *, show_paths: bool = False, show_endpoints: bool = False
) -> list[Leak]:
    """Private details of this machine in `files` ({name: text}): home folder, host name, secrets."""
    needles: list[tuple[str, str]] = []
    if not show_paths:
        home = str(Path.home())
        if len(home) > 1:
            needles.append((home, "home folder"))
        cwd = os.getcwd()
        if cwd not in ("/", home) and len(cwd) > 4:
            needles.append((cwd, "working folder"))
        user = _user()
        if user:
            needles += [(f"/home/{user}", "home folder"), (f"/Users/{user}", "home folder")]
    if not show_endpoints:
        for host in {socket.gethostname(), socket.getfqdn()}:
            if len(host) >= 6 and host.split(".")[0] not in ("localhost", "ip6-localhost"):
                needles.append((host, "host name"))
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 8:
            needles.append((value, f"the value of ${name}"))
    leaks = []
    for file, text in files.items():
        for number, line in enumerate(text.splitlines(), 1):
            for needle, what in needles:
                if re.search(rf"(?<![\w.-]){re.escape(needle)}(?![\w-])", line):
                    leaks.append(Leak(file, number, what))
    return leaks


def _user() -> str | None:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return None
    return user if len(user) >= 3 else None
