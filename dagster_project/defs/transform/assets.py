"""The dbt models as partitioned Dagster assets: each run builds and tests its date range."""

import importlib
import os
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

from dagster import AssetCheckResult, AssetExecutionContext, Output
from dagster_dbt import DbtCliResource, dbt_assets
from duckdb import DuckDBPyConnection

from dagster_project.asset_defaults import DAILY_STEP
from dagster_project.metadata import day_metadata, rounded_metadata
from dagster_project.partitions import days_between, partition_dates
from dagster_project.paths import personas_home
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.transform.project import PersonasDbtTranslator, dbt_project, ensure_manifest, home_dbt_target
from dagster_project.warehouse import scalar

# What later steps of a run import on first use: Great Expectations (~1.5 s) for the gates and
# MLflow's SQL stores (~1 s) for the persona fit. This step mostly waits on the dbt subprocess,
# so importing them meanwhile takes that time off the run's critical path.
MODULES_LATER_STEPS_IMPORT = (
    "dagster_project.quality.gx_runner",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
)


def import_in_background(modules: tuple[str, ...]) -> None:
    def import_all() -> None:
        for module in modules:
            importlib.import_module(module)

    threading.Thread(target=import_all, name="import-for-later-steps", daemon=True).start()


def _table_metadata(connection: DuckDBPyConnection, table: str, days: list[date]) -> tuple[dict[str, Any], dict]:
    """A model's metadata read after dbt has released the file: for the whole table, and per day of the range
    (its row count, and reject reasons for `rejected_events`)."""
    columns = {row[0] for row in connection.execute(f"describe {table}").fetchall()}
    if "event_date" not in columns:
        return {"dagster/row_count": scalar(connection, f"select count(*) from {table}")}, {}
    counts = dict(connection.execute(
        f"select event_date, count(*) from {table} where event_date between ? and ? group by all", [days[0], days[-1]]
    ).fetchall())
    by_day: dict[date, dict[str, Any]] = {day: {"dagster/row_count": counts.get(day, 0)} for day in days}
    if table == "rejected_events":
        for day, reason, count in connection.execute(
            f"select event_date, reason, count(*) from {table} where event_date between ? and ? "
            "group by all order by count(*) desc", [days[0], days[-1]]
        ).fetchall():
            by_day[day].setdefault("rejected_by_reason", {})[reason] = count
    return {"rows_all_partitions": scalar(connection, f"select count(*) from {table}")}, by_day


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=PersonasDbtTranslator(),
    **DAILY_STEP,
)
def dbt_warehouse(context: AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource) -> Iterator[Any]:
    """Runs `dbt build` over the partition range (PERSONAS_MIN_DATE/MAX_DATE), then reports row counts."""
    first, last = partition_dates(context)
    # The dbt subprocess inherits the range (dbt/macros/partitions.sql) and the warehouse (dbt/profiles.yml)
    # from the environment: the same file the `duckdb` resource reads.
    os.environ.update(PERSONAS_MIN_DATE=first.isoformat(), PERSONAS_MAX_DATE=last.isoformat(),
                      PERSONAS_WAREHOUSE=duckdb.database_path())
    import_in_background(MODULES_LATER_STEPS_IMPORT)
    # DuckDB admits one process per file: collect dbt's events, then read counts once dbt has exited.
    events = list(dbt.cli(["build"], context=context, target_path=home_dbt_target(personas_home())).stream())
    # One connection for every model's counts: opening the warehouse file costs more than a count.
    with duckdb.connect(read_only=True) as connection:
        for event in events:
            if isinstance(event, Output):
                asset_key = context.asset_key_for_output(event.output_name)
                whole_table, by_day = _table_metadata(connection, asset_key.path[-1], days_between(first, last))
                day_metadata(context, by_day, asset_key=asset_key)
                yield event.with_metadata(rounded_metadata({**event.metadata, **whole_table}))
            elif isinstance(event, AssetCheckResult):  # a dbt test
                yield event.with_metadata(rounded_metadata(event.metadata))
            else:
                yield event
