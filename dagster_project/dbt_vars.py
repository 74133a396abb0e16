"""The contracts dbt and Python share, read from the one place they are declared: dbt's `vars`.

dbt/dbt_project.yml lists the source entities (`source_entities`, `event_entities`) and the allowed
actions of the built-in sources (`web_actions`, `social_actions`); the models and yml tests read
them with `var()`, Python reads them here. No Dagster or dbt import: a YAML read.
"""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

DBT_PROJECT_FILE = Path(__file__).resolve().parents[1] / "dbt" / "dbt_project.yml"


@cache
def dbt_vars() -> dict[str, Any]:
    """Every var of the dbt project, as dbt_project.yml declares it."""
    return yaml.safe_load(DBT_PROJECT_FILE.read_text())["vars"]


def dbt_var(name: str) -> Any:
    """One var; a clear error when the dbt project does not declare it."""
    declared = dbt_vars()
    if name not in declared:
        raise KeyError(
            f"dbt var {name!r} is not declared in {DBT_PROJECT_FILE} (declared: {', '.join(sorted(declared))})")
    return declared[name]
