"""The lower layers stay free of the orchestrator: the API, the science, the review commands and
`personas evaluate` load without Dagster (issue #18), so they start fast and can run anywhere."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "dagster_project"
DEFS_PACKAGE = "dagster_project.defs"
# The only modules outside defs/ that may import it: the command line names the build job it launches.
# definitions.py, the code location, reads the folder with `load_from_defs_folder` and imports none of it.
DEFS_IMPORTERS = {"cli.py"}

PLAIN_MODULES = [
    "dagster_project.science",
    "dagster_project.science.daily",
    "dagster_project.api.service",
    "dagster_project.api.app",
    "dagster_project.evaluation",
    "dagster_project.review.actions",
    "dagster_project.warehouse",
    "dagster_project.tracking.store",
    "dagster_project.code_version",
]


def test_the_plain_layers_import_no_dagster_module():
    probe = (
        f"import importlib, sys\n"
        f"for name in {PLAIN_MODULES!r}: importlib.import_module(name)\n"
        "dagster_roots = ('dagster', 'dagster_dbt', 'dagster_webserver', 'dagster_postgres')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in dagster_roots))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"Dagster modules loaded by the plain layers: {loaded}"


def _imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({node.module, *(f"{node.module}.{alias.name}" for alias in node.names)})
    return names


def test_only_the_entry_points_import_the_definitions_folder():
    """Definitions sit on top: a module below them importing `defs` would pull Dagster and every asset into it."""
    importers = {
        str(path.relative_to(PACKAGE_DIR))
        for path in PACKAGE_DIR.rglob("*.py")
        if PACKAGE_DIR / "defs" not in path.parents
        and any(name == DEFS_PACKAGE or name.startswith(f"{DEFS_PACKAGE}.")
                for name in _imported_names(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert importers == DEFS_IMPORTERS
