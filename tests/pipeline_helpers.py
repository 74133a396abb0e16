"""Run the real graph (real DuckDB file, real dbt, real Dagster) inside a test's home."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

from dagster_project.definitions import defs
from dagster_project.paths import activate_home, personas_home, warehouse_path

ENV_KEYS = ("PERSONAS_HOME", "DAGSTER_HOME", "PERSONAS_WAREHOUSE")


@contextmanager
def using_home(home: Path) -> Iterator[Path]:
    """Activate `home` for the block and restore the previous environment after it."""
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    try:
        yield activate_home(home)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


def materialize_range(first: date, last: date, selection: AssetSelection | None = None) -> ExecuteInProcessResult:
    """One run over [first, last], as a single-run backfill or `personas run` executes it."""
    return materialize(
        defs.assets,
        selection=selection,
        resources=defs.resources,
        tags={"dagster/asset_partition_range_start": first.isoformat(),
              "dagster/asset_partition_range_end": last.isoformat()},
    )


def query(sql: str, parameters: Sequence | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse_path(personas_home())), read_only=True) as connection:
        return connection.execute(sql, parameters or []).fetchall()
