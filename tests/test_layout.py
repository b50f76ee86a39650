"""The product stands apart from the workshop.

The product is what the images install: each service's package
(services/<name>/<package>/) and common/facesearch_common/, and the operator's
command (cli/facesearch_cli/). None of it imports
the workshop (devkit/, bench/, deploy/, tests/). The tests beside a service
are workshop: they may read test data and start processes through devkit/.
Nothing anywhere imports tests/: what tests and benches share is in devkit/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = [
    ROOT / "common" / "facesearch_common",
    ROOT / "cli" / "facesearch_cli",
    *(p for p in (ROOT / "services").glob("*/*") if (p / "__init__.py").is_file()),
]
WORKSHOP = {"devkit", "bench", "deploy", "tests", "tools"}
SKIP = {".venv", "gen", ".git", ".device", "__pycache__"}


def python_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.py") if not SKIP & set(p.relative_to(ROOT).parts)]


def imported(path: Path) -> set[str]:
    """The top-level packages that a module imports (absolute imports only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def offenders(files: list[Path], banned: set[str]) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): bad for p in files if (bad := imported(p) & banned)}


def test_the_product_never_imports_the_workshop():
    files = [p for root in PRODUCT for p in python_files(root)]
    assert len(files) > 40
    assert offenders(files, WORKSHOP) == {}


def test_the_services_install_only_what_they_import():
    """The services and common/ never import the operator's command or the
    libraries only it needs, so their images leave those out."""
    files = [p for root in PRODUCT if root.name != "facesearch_cli" for p in python_files(root)]
    assert offenders(files, {"facesearch_cli", "typer", "rich"}) == {}
    common = (ROOT / "common" / "pyproject.toml").read_text()
    assert not any(f'"{lib}' in common for lib in ("typer", "rich", "httpx"))


def test_nothing_imports_tests():
    files = python_files(ROOT)
    assert offenders(files, {"tests"}) == {}


def test_the_check_sees_a_banned_import(tmp_path):
    module = tmp_path / "leak.py"
    module.write_text("import os\nfrom devkit.stack import Stack\nfrom . import sibling\n")
    assert imported(module) == {"os", "devkit"}
