"""The dbt models as partitioned Dagster assets: each run builds and tests its date range."""

import importlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, Output
from dagster_dbt import DbtCliResource, dbt_assets
from duckdb import DuckDBPyConnection

from dagster_project.partitions import daily_partitions, partition_dates, single_run_backfill
from dagster_project.resources.duckdb import DUCKDB_POOL, DuckDBResource, scalar
from dagster_project.transform.project import PersonasDbtTranslator, dbt_project, ensure_manifest


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


def _table_metadata(connection: DuckDBPyConnection, table: str, first, last) -> dict[str, Any]:
    """Row counts of the range (and reject reasons) read after dbt has released the file."""
    columns = {row[0] for row in connection.execute(f"describe {table}").fetchall()}
    if "event_date" not in columns:
        return {"dagster/row_count": scalar(connection, f"select count(*) from {table}")}
    in_range = f"from {table} where event_date between ? and ?"
    metadata: dict[str, Any] = {
        "dagster/row_count": scalar(connection, f"select count(*) {in_range}", [first, last]),
        "rows_all_partitions": scalar(connection, f"select count(*) from {table}"),
    }
    if table == "rejected_events":
        by_reason = connection.execute(
            f"select reason, count(*) {in_range} group by reason order by count(*) desc", [first, last]
        ).fetchall()
        metadata["rejected_by_reason"] = {reason: count for reason, count in by_reason}
    return metadata


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=PersonasDbtTranslator(),
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
)
def dbt_warehouse(context: AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource) -> Iterator[Any]:
    """Runs `dbt build` over the partition range (PERSONAS_MIN_DATE/MAX_DATE), then reports row counts."""
    first, last = partition_dates(context)
    # The dbt subprocess inherits the range from the environment (see dbt/macros/partitions.sql).
    os.environ.update(PERSONAS_MIN_DATE=first.isoformat(), PERSONAS_MAX_DATE=last.isoformat())
    import_in_background(MODULES_LATER_STEPS_IMPORT)
    # DuckDB admits one process per file: collect dbt's events, then read counts once dbt has exited.
    events = list(dbt.cli(["build"], context=context).stream())
    # One connection for every model's counts: opening the warehouse file costs more than a count.
    with duckdb.connect(read_only=True) as connection:
        for event in events:
            if isinstance(event, Output):
                table = context.asset_key_for_output(event.output_name).path[-1]
                yield event.with_metadata({**event.metadata, **_table_metadata(connection, table, first, last)})
            else:
                yield event
