"""`distill view`: a run's traces, verdicts and rejections in a local web page (distill/viewer/)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from distill.cli.app import app


@app.command("view")
def view(
    run: Annotated[Path, typer.Argument(help="A run directory or an eval directory.", show_default=False)],
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default 8765); 0 picks a free one.")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to bind (default 127.0.0.1); anything but loopback shares every trace."
        ),
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
) -> None:
    """Browse RUN's traces, verdicts and rejections in a local web page (read-only; Ctrl-C stops it).

    [bold]Examples[/bold]

    [cyan]distill view runs/demo[/cyan]  http://127.0.0.1:8765/

    [cyan]distill view evals/student --port 0 --open[/cyan]  an eval directory, on a free port
    """
    from distill.viewer import DEFAULT_HOST, DEFAULT_PORT, Viewer, is_loopback

    host = DEFAULT_HOST if host is None else host
    viewer = Viewer(run, host=host, port=DEFAULT_PORT if port is None else port)
    if not is_loopback(host):
        print(
            f"warning: listening on {host}: anyone who can reach this machine can read every trace "
            "(the viewer has no login)",
            file=sys.stderr,
        )
    for notice in viewer.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"distill view: {viewer.url}  (Ctrl-C to stop)", flush=True)
    if open_:
        __import__("webbrowser").open(viewer.url)
    with viewer:
        try:
            viewer.serve_forever()
        except KeyboardInterrupt:  # the usual way to stop a server: not an interruption to resume
            print("distill view: stopped", file=sys.stderr)
