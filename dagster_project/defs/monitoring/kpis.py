"""`persona_kpis`: update latency, cross-channel consistency and business alignment of each model date.

Thin: reads the day's events, memories, personas and utility, calls `science.kpis`, writes
one row per KPI and day, logs them to MLflow as series (`kpi_<name>` and
`kpi_<name>_threshold` in the monitoring run `persona-drift`), and warns (never blocks)
on each day a KPI passes its threshold: one check verdict per day.

Update latency is measured from each event's landing file's mtime (when the data reached
the platform) to the time the instance recorded the day's `user_personas`
materialisation (what the API serves): the pipeline's own delay. The delay from the
event's own timestamp is kept beside it (`event_age_*`): it adds the wait for the daily
batch, and on back-filled sample data it is weeks.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    Output,
)

from dagster_project.asset_defaults import daily_asset
from dagster_project.metadata import column_schema, day_check_evaluations, day_metadata, latest_materializations
from dagster_project.partitions import daily_partitions, days_between, partition_dates
from dagster_project.paths import personas_home
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.run_config import config_from_settings, settings_from_config
from dagster_project.science.kpis import (
    KpiThresholds,
    business_alignment,
    cross_channel_consistency,
    kpi_rows,
    percentiles,
    update_latencies,
)
from dagster_project.tracking.drift_series import log_drift_series
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.warehouse import read_frame, replace_partition_rows, table_exists

KPI_CHECK_NAME = "persona_kpis_within_thresholds"
VISIBLE_ASSET = AssetKey("user_personas")

PersonaKpisConfig = config_from_settings(
    "PersonaKpisConfig", KpiThresholds,
    "A KPI past its threshold makes the check warn; the defaults (`KpiThresholds`) are calibrated on the demo data.",
)


def visible_times(context: AssetExecutionContext, days: list) -> dict:
    """Per day, the (naive UTC) time of the latest `user_personas` materialisation of its partition."""
    latest = latest_materializations(context.instance, VISIBLE_ASSET, days)
    return {day: datetime.fromtimestamp(latest[day.isoformat()].timestamp, UTC).replace(tzinfo=None)
            for day in days if day.isoformat() in latest}


def landing_times(events: pl.DataFrame) -> pl.DataFrame:
    """landing_file, landed_at (naive UTC mtime) of each distinct landing file; files gone are left out."""
    home = personas_home()
    rows = [(name, datetime.fromtimestamp((home / name).stat().st_mtime, UTC).replace(tzinfo=None))
            for name in events["landing_file"].drop_nulls().unique().to_list() if (home / name).exists()]
    return pl.DataFrame(rows, schema={"landing_file": pl.String, "landed_at": pl.Datetime("us")}, orient="row")


def day_values(connection: duckdb.DuckDBPyConnection, day, visible_at: datetime | None) -> tuple[dict, dict]:
    """The KPI values of a model date and the per-source consistency behind them."""
    events = read_frame(connection, "select landing_file, ts from fct_events where event_date = ?", [day])
    latency = update_latencies(events, landing_times(events), visible_at) if visible_at else pl.DataFrame(
        {"since_landing_seconds": [], "since_event_seconds": []}, schema={
            "since_landing_seconds": pl.Float64, "since_event_seconds": pl.Float64})
    landing_p50, landing_p95 = percentiles(latency["since_landing_seconds"])
    event_p50, event_p95 = percentiles(latency["since_event_seconds"])
    memories = read_frame(connection, "select m.person_id, m.sources, a.persona_id from memory_assignments a "
                          "join intent_memories m using (memory_id) where a.event_date = ?", [day])
    user_personas = read_frame(connection, "select person_id, persona_id, weight from user_personas where event_date = ?",
                               [day])
    consistency = cross_channel_consistency(memories, user_personas)
    utility = (read_frame(connection, "select method, k, hit_rate from persona_utility where event_date = ?", [day])
               if table_exists(connection, "persona_utility") else pl.DataFrame(
                   schema={"method": pl.String, "k": pl.Int64, "hit_rate": pl.Float64}))
    values = {
        "update_latency_p50_seconds": landing_p50,
        "update_latency_p95_seconds": landing_p95,
        "event_age_p50_seconds": event_p50,
        "event_age_p95_seconds": event_p95,
        "cross_channel_consistency": consistency.value,
        "multichannel_people": float(consistency.people),
        **business_alignment(utility),
    }
    return values, consistency.by_source


@daily_asset(
    __name__,
    deps=["personas", "user_personas", "persona_utility", "fct_events"],
    check_specs=[AssetCheckSpec(
        KPI_CHECK_NAME, asset="persona_kpis", blocking=False, partitions_def=daily_partitions,
        description="Warns when a KPI of a day passes its threshold (latency above, consistency or a lift below).",
    )],
    group_name="monitoring",
    kinds={"duckdb", "polars", "mlflow"},
    description="The three persona KPIs per model date: update latency (landing to visible, p50/p95), "
    "cross-channel consistency, business alignment (next-day Hit@10 lift over the ablation and popularity).",
)
def persona_kpis(
    context: AssetExecutionContext, config: PersonaKpisConfig, duckdb: DuckDBResource, mlflow: MlflowTracking
) -> Iterator[MaterializeResult | Output | AssetCheckEvaluation]:
    first, last = partition_dates(context)
    days = days_between(first, last)
    thresholds = settings_from_config(config, KpiThresholds)
    visible = visible_times(context, days)
    with duckdb.connect() as connection:
        measured = {day: day_values(connection, day, visible.get(day)) for day in days}
        rows = pl.concat([kpi_rows(day, values, thresholds) for day, (values, _) in measured.items()])
        replace_partition_rows(connection, "main.persona_kpis", rows, first, last)
    log_drift_series(mlflow.store(), rows.select("event_date", "value", "threshold", metric=pl.format("kpi_{}", "kpi")),
                     daily_partitions.start.date())
    breaches = rows.filter("breached")
    day_metadata(context, {
        day: {
            "dagster/row_count": rows.filter(pl.col("event_date") == day).height,
            **{kpi: value for kpi, value in values.items() if value is not None},
            "breached_kpis": ", ".join(breaches.filter(pl.col("event_date") == day)["kpi"]) or "none",
            "consistency_by_source": MetadataValue.json(by_source),
        }
        for day, (values, by_source) in measured.items()
    })
    yield MaterializeResult(metadata={"dagster/column_schema": column_schema(rows)})
    yield from day_check_evaluations(context, AssetCheckKey(context.asset_key, KPI_CHECK_NAME), {
        day: _day_verdict(rows.filter(pl.col("event_date") == day)) for day in days
    }, blocking=False)


def _day_verdict(day_rows: pl.DataFrame) -> tuple[bool, AssetCheckSeverity, dict]:
    """A model date's KPI verdict: each KPI past its threshold, by how much, and each KPI the day could not measure
    (no value, e.g. no utility yet), so a pass is not read as every KPI being within its threshold."""
    breaches = day_rows.filter("breached").sort("kpi")
    texts = {row["kpi"]: f"{row['value']:.3f} vs threshold {row['threshold']:.3f}"
             for row in breaches.iter_rows(named=True)}
    return breaches.is_empty(), AssetCheckSeverity.WARN, {
        "breached": "; ".join(f"{kpi} {text}" for kpi, text in texts.items()) or "none",
        "breaches": MetadataValue.json(texts),
        "not_measured": ", ".join(day_rows.filter(pl.col("value").is_null()).sort("kpi")["kpi"]) or "none",
    }
