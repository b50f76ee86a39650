"""The `facesearch` operator command, apart from the services: what it needs
(typer, rich, httpx) is installed with it, not in the services' images."""
