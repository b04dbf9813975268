"""The `distill` command: one thin command per stage.

Each command parses its flags, builds the stage's config (recipe YAML, then `key=value`
overrides, then contract flags), calls the library function and prints its report. No logic lives
here: no loops over rows, no defaults repeated from the config models.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from distill.errors import DistillError

app = typer.Typer(
    name="distill",
    help="Distil reasoning data: generate → verify → filter → card/push → sft → eval.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a local may hold a key: never print locals
    add_completion=False,
    rich_markup_mode="rich",
)

RecipeOpt = Annotated[Optional[Path], typer.Option("--recipe", "-r", help="Recipe YAML; flags override it.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override any recipe key, e.g. --set generate.temperature=0.7 (repeatable)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one summary line at the end.")]

_state = {"debug": False}


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Verbose logs and full tracebacks.")] = False) -> None:
    _state["debug"] = debug
    _configure_logging(debug)


def _configure_logging(debug: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=debug, rich_tracebacks=debug, markup=False)],
        force=True,
    )
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def console(stderr: bool = False):  # noqa: ANN201 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=stderr)


# ── stage commands ─────────────────────────────────────────────────────────
# Each stage's command is added below by the module that owns the stage; keep one function each.


def main() -> None:
    """Console-script entry point: one-line errors for DistillError, exit 130 on Ctrl-C."""
    from typer.exceptions import TyperException

    try:
        result = app(standalone_mode=False)
    except DistillError as e:
        if _state["debug"]:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except TyperException as e:  # usage errors: click's own message and exit code
        e.show()  # type: ignore[attr-defined]
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
