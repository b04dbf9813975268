"""Optional extras: a command that needs one says which to install instead of failing on an import.

distill's core (generate, verify, filter, card, push) installs light; training and evaluating a
student need the `train` extra (torch, transformers, TRL, accelerate). A wheel installed without it
must answer `distill sft` with one line naming the extra, never an ImportError traceback.
"""

from __future__ import annotations

import importlib.util

from distill.errors import ConfigError

__all__ = ["EXTRAS", "missing_modules", "require_extra"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "transformers", "trl", "accelerate"),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if not _is_installed(m)]


def require_extra(extra: str, what: str) -> None:
    """Raise a one-line ConfigError naming the extra when any of its modules is missing."""
    missing = missing_modules(extra)
    if missing:
        raise ConfigError(
            f"{what} needs the [{extra}] extra (missing: {', '.join(missing)}): "
            f"pip install 'distill[{extra}]' (on a CPU-only machine add -c constraints.txt for the CPU torch)"
        )


def _is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False
