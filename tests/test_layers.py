"""The lower layers stay free of the orchestrator: the API, the science, the review commands and
`personas evaluate` load without Dagster (issue #18), so they start fast and can run anywhere."""

import subprocess
import sys

PLAIN_MODULES = [
    "dagster_project.science",
    "dagster_project.science.daily",
    "dagster_project.api.service",
    "dagster_project.api.app",
    "dagster_project.evaluation",
    "dagster_project.review.actions",
    "dagster_project.warehouse",
    "dagster_project.tracking.store",
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
