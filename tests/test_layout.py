"""The product stands apart from the workshop.

The product is what the images install: each service's package
(services/<name>/<package>/) and common/facesearch_common/, and the operator's
command (cli/facesearch_cli/). None of it imports
the workshop (devkit/, bench/, deploy/, tests/). The tests beside a service
are workshop: they may read test data and start processes through devkit/.
Nothing anywhere imports tests/: what tests and benches share is in devkit/."""

from __future__ import annotations

import ast
import shutil
import subprocess
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


def test_the_embedder_installs_none_of_commons_extras():
    """common's database, token and reflection modules need packages the
    embedder's image leaves out (common's extras): it imports none of them,
    and uv, which builds the image, installs none of their packages."""
    files = python_files(ROOT / "services" / "embedder" / "embedder")
    needing = {"asyncpg", "jwt", "cryptography", "grpc_reflection"}
    assert offenders(files, needing) == {}
    extras = {f"facesearch_common.{m}" for m in ("database", "tokens", "reflection")}
    assert {str(p.relative_to(ROOT)): m for p in files if (m := common_modules(p) & extras)} == {}
    uv = shutil.which("uv")
    assert uv, "uv (which make deps installs) is not on PATH"
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--package", "facesearch-embedder"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {line.split("==")[0] for line in exported.splitlines() if "==" in line}
    assert "torch" in installed  # the export names the embedder's packages at all
    assert installed & {"asyncpg", "pyjwt", "cryptography", "grpcio-reflection"} == set()


def common_modules(path: Path) -> set[str]:
    """The facesearch_common modules a file imports, `from facesearch_common import x` as `facesearch_common.x`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "facesearch_common":
            found |= {f"facesearch_common.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("facesearch_common."):
            found.add(".".join((node.module or "").split(".")[:2]))
        elif isinstance(node, ast.Import):
            found |= {".".join(a.name.split(".")[:2]) for a in node.names if a.name.startswith("facesearch_common.")}
    return found


def test_nothing_imports_tests():
    files = python_files(ROOT)
    assert offenders(files, {"tests"}) == {}


def test_the_check_sees_a_banned_import(tmp_path):
    module = tmp_path / "leak.py"
    module.write_text("import os\nfrom devkit.stack import Stack\nfrom . import sibling\n")
    assert imported(module) == {"os", "devkit"}


def test_the_check_sees_each_form_of_a_common_import(tmp_path):
    module = tmp_path / "leak.py"
    module.write_text(
        "from facesearch_common import database, logs\n"
        "from facesearch_common.tokens import verify\n"
        "import facesearch_common.reflection\n"
    )
    assert common_modules(module) == {
        "facesearch_common.database",
        "facesearch_common.logs",
        "facesearch_common.tokens",
        "facesearch_common.reflection",
    }
