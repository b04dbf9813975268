"""The `distill` app: the Typer root, the options every command shares, logging, and the entry point.

The commands are added by the modules of this package (see `distill/cli/__init__.py`); `--help` lists
them in pipeline order (COMMANDS), whichever module registers them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from distill.errors import DistillError

# `distill --help` lists the commands in this order (the pipeline's); others follow.
COMMANDS = ("run", "generate", "sft", "merge", "eval", "verify", "filter", "card", "push", "view", "recipes")


class _PlainHelp(TyperGroup):
    """Help that shows `--flag` alone and `--n INTEGER`, not typer's Python types (`<bool>`, `<list[str]>`)."""

    WORDS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "Path": "PATH"}

    def list_commands(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        names = super().list_commands(ctx)
        return sorted(
            names, key=lambda n: (COMMANDS.index(n) if n in COMMANDS else len(COMMANDS), names.index(n))
        )

    def get_command(self, ctx, name):  # noqa: ANN001, ANN201 - click's signature
        command = super().get_command(ctx, name)
        if command is not None:
            self._plain(command.get_params(ctx))
        return command

    def get_params(self, ctx):  # noqa: ANN001, ANN201
        return self._plain(super().get_params(ctx))

    def _plain(self, params):  # noqa: ANN001, ANN202
        for param in params:
            if param.metavar is not None or not hasattr(param, "bare_type"):
                continue
            if param.param_type_name == "argument":  # its name is shown already; no type beside it
                param.display_type_rich = lambda ctx: None
                continue
            bare = param.bare_type().removeprefix("list[").removesuffix("]")
            is_flag = getattr(param, "is_flag", False) or bool(getattr(param, "secondary_opts", None))
            param.metavar = "" if is_flag or bare == "bool" else self.WORDS.get(bare, bare.upper())
        return params


app = typer.Typer(
    cls=_PlainHelp,
    name="distill",
    help="Distil reasoning data: generate → verify → filter → card/push → sft → eval.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a local may hold a key: never print locals
    add_completion=False,
    rich_markup_mode="rich",
)

RecipeOpt = Annotated[
    Path | None,
    typer.Option(
        "--recipe",
        "-r",
        help="Recipe YAML or a shipped recipe's name (`distill recipes`); flags override it.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override any recipe key, e.g. --set generate.temperature=0.7 (repeatable)."
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No live display; one summary line at the end.")
]

_state = {"debug": False}


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Debug logs and full tracebacks.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show info logs beside the progress.")
    ] = False,
) -> None:
    _state["debug"] = debug
    _configure_logging(debug, verbose, training=ctx.invoked_subcommand == "sft")


def _configure_logging(debug: bool, verbose: bool = False, training: bool = False) -> None:
    """Warnings only by default: the live progress and the final tables are the output, not log lines.

    `distill sft` is the exception: its step lines (loss, tokens/s, MFU) are its progress display.
    """
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[
            RichHandler(console=console(stderr=True), show_path=debug, rich_tracebacks=debug, markup=False)
        ],
        force=True,
    )
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if training and not debug:
        logging.getLogger("distill.training").setLevel(logging.INFO)


def console(stderr: bool = False):  # noqa: ANN201 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=stderr)


def main() -> None:
    """Console-script entry point: one-line errors for DistillError, exit 130 on Ctrl-C."""
    from typer.exceptions import TyperException

    try:
        result = app(standalone_mode=False)
        if result == 130:  # typer turns Ctrl-C into exit code 130 without a word
            raise KeyboardInterrupt
        # The process exits next: freezing what is alive spares the interpreter's exit-time garbage
        # collection passes over every loaded module (0.15–0.25 s with polars + pyarrow + aiohttp loaded).
        __import__("gc").freeze()
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
