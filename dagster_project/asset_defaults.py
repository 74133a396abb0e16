"""What the platform's asset decorators share, declared once.

Every materialising step is daily-partitioned, runs a range of days as one run and writes
DuckDB in the `duckdb` pool (`DAILY_STEP`). The assets after the warehouse also rerun when an
upstream partition changes and carry a code version derived from the source they run
(`code_version.py`), so the UI marks them stale after a code change (`daily_asset`,
`daily_spec`). Owners name the team to ask about an asset.
"""

from collections.abc import Callable
from typing import Any

from dagster import AssetSpec, asset

from dagster_project.code_version import code_version
from dagster_project.operations.automation import rerun_on_upstream_change
from dagster_project.partitions import daily_partitions, single_run_backfill
from dagster_project.resources.duckdb import DUCKDB_POOL

DATA_PLATFORM = ["team:data-platform"]
PERSONA_SCIENCE = ["team:persona-science"]

DAILY_STEP: dict[str, Any] = {
    "partitions_def": daily_partitions,
    "backfill_policy": single_run_backfill,
    "pool": DUCKDB_POOL,
}


def _derived_defaults(module: str) -> dict[str, Any]:
    return {"automation_condition": rerun_on_upstream_change, "owners": PERSONA_SCIENCE,
            "code_version": code_version(module)}


def daily_asset(module: str, **arguments: Any) -> Callable:
    """`@asset` of a daily step that reruns on upstream changes; `module` (its `__name__`) names the code it runs.
    Any argument given overrides its default."""
    return asset(**{**DAILY_STEP, **_derived_defaults(module), **arguments})


def daily_spec(key: str, module: str, **arguments: Any) -> AssetSpec:
    """An `AssetSpec` of a `multi_asset(**DAILY_STEP, ...)` step, with the defaults of `daily_asset`."""
    return AssetSpec(key, **{**_derived_defaults(module), **arguments})
