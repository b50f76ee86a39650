"""`python -m facesearch_cli`: the same as the `facesearch` command."""

from .commands import app

app()
