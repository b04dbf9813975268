"""Dataset card templates (Jinja2), shipped with the package."""
