"""`webhook_events`: after each day's champion update, queue `persona.changed` and `drift.breached`.

The step only reads a few persona and drift rows and writes the outbox (SQLite); a
separate process delivers, so a slow or dead receiver never lengthens the run.
"""

from datetime import timedelta

import duckdb
import polars as pl
from dagster import AssetDep, AssetExecutionContext, MaterializeResult, MetadataValue, TimeWindowPartitionMapping

from dagster_project.asset_defaults import daily_asset
from dagster_project.partitions import days_between, partition_dates
from dagster_project.paths import personas_home
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.warehouse import read_frame, table_exists
from dagster_project.webhooks.delivery import spawn_deliverer
from dagster_project.webhooks.events import (
    DRIFT_BREACHED,
    PERSONA_CHANGED,
    drift_breached_payload,
    persona_changed_payload,
)
from dagster_project.webhooks.store import existing_store


def _rows(connection: duckdb.DuckDBPyConnection, table: str, columns: str, first, last) -> pl.DataFrame:
    if not table_exists(connection, table):
        return pl.DataFrame()
    return read_frame(connection, f"select event_date, {columns} from {table} where event_date between ? and ?",
                      [first, last])


def _on(frame: pl.DataFrame, day) -> pl.DataFrame:
    return frame.filter(pl.col("event_date") == day) if frame.width else frame


@daily_asset(
    __name__,
    deps=["champion_model", "persona_drift",
          AssetDep("personas", partition_mapping=TimeWindowPartitionMapping(start_offset=-1))],
    group_name="monitoring",
    kinds={"sqlite"},
    description="Queues the webhook events of each day (`persona.changed`: personas born, retired, relabelled or "
    "whose share moved; `drift.breached`) for their subscribers and starts a background deliverer.",
)
def webhook_events(context: AssetExecutionContext, duckdb: DuckDBResource) -> MaterializeResult:
    home = personas_home()
    store = existing_store(home)
    if store is None or not (store.subscriptions(PERSONA_CHANGED) or store.subscriptions(DRIFT_BREACHED)):
        return MaterializeResult(metadata={"queued": 0, "subscribers": 0})
    first, last = partition_dates(context)
    with duckdb.connect() as connection:
        personas = _rows(connection, "personas", "persona_id, label, share", first - timedelta(days=1), last)
        drift = _rows(connection, "persona_drift", "metric, value, threshold, breached", first, last)
        # Statuses as the persona step recorded them (dormant, split, merged), the same as `persona_drift` reports.
        lineage = _rows(connection, "persona_lineage", "persona_id, event, level", first, last)
        if lineage.width:
            lineage = lineage.filter(pl.col("level") == "persona")
    queued = {}
    for day in days_between(first, last):
        payloads = {
            PERSONA_CHANGED: persona_changed_payload(
                day, _on(personas, day - timedelta(days=1)), _on(personas, day),
                lineage=_on(lineage, day) if not _on(lineage, day).is_empty() else None,
            ),
            DRIFT_BREACHED: drift_breached_payload(day, _on(drift, day)) if drift.width else None,
        }
        for event, payload in payloads.items():
            if payload is not None and (key := store.enqueue(event, payload)) is not None:
                queued[f"{day} {event}"] = key
    if queued:
        deliverer = spawn_deliverer(home)
        context.log.info(f"Queued {len(queued)} webhook events; deliverer pid {deliverer.pid} (log: logs/webhooks.log)")
    return MaterializeResult(metadata={"queued": len(queued), "idempotency_keys": MetadataValue.json(queued)})
