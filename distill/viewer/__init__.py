"""`distill view RUN`: a private, local web viewer for a run's traces, verdicts and rejections.

    distill view runs/demo                 # http://127.0.0.1:8765/
    distill view evals/student --port 0    # an eval directory, on a free port

The page reads the run in place and never writes to it; it binds loopback unless told otherwise,
escapes every piece of model text, and its Content-Security-Policy allows no request beyond this
server (KaTeX and the styles ship in `static/`). Layout: `source` opens a run (index in memory, text
on demand), `query` reads filters from the URL, `pages` builds each page's data (with `overview`,
`evidence` and `text`), `server` serves it through the Jinja templates in `templates/`.
"""

from __future__ import annotations

from distill.viewer.server import DEFAULT_HOST, DEFAULT_PORT, Viewer, is_loopback

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Viewer", "is_loopback"]
