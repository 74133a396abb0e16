"""Run the real graph (real DuckDB file, real dbt, real Dagster) inside a test's home."""

from collections.abc import Sequence
from datetime import date

import duckdb
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

from dagster_project.definitions import defs
from dagster_project.paths import personas_home, warehouse_path

WAREHOUSE_ASSETS = AssetSelection.groups("raw", "staging", "identity", "warehouse")


def materialize_day(day: date, selection: AssetSelection | None = None, instance: DagsterInstance | None = None,
                    raise_on_error: bool = True) -> ExecuteInProcessResult:
    return materialize(
        defs.assets,
        selection=selection,
        resources=defs.resources,
        partition_key=day.isoformat(),
        instance=instance,
        raise_on_error=raise_on_error,
    )


def query(sql: str, parameters: Sequence | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse_path(personas_home())), read_only=True) as connection:
        return connection.execute(sql, parameters or []).fetchall()
