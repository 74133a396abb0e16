"""`persona_drift`: how each model date's personas moved against the day before.

Reads the persona tables of the range and the day before it, calls the pure
`science.drift`, writes one row per metric and day, logs every metric to MLflow as a
series, and reports a non-blocking check (severity WARN) that fails when a metric of
a day in the range passes its threshold: drift is a reason to look, not to stop.
"""

from collections.abc import Iterator
from datetime import date, timedelta

import duckdb
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from dagster_project.partitions import daily_partitions, days_between, partition_dates, single_run_backfill
from dagster_project.personas.assets import OWNERS
from dagster_project.resources.duckdb import DUCKDB_POOL, DuckDBResource, read_frame, replace_partition_rows, table_exists
from dagster_project.run_config import config_from_settings, settings_from_config
from dagster_project.science.drift import (
    SHARE_MOVE,
    DayDrift,
    DriftThresholds,
    day_drift,
    drift_rows,
    moved_personas,
)
from dagster_project.tracking.drift_series import log_drift_series
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.operations.automation import rerun_on_upstream_change

DRIFT_CHECK_NAME = "persona_drift_within_thresholds"
DAY_AND_DAY_BEFORE = TimeWindowPartitionMapping(start_offset=-1)


PersonaDriftConfig = config_from_settings(
    "PersonaDriftConfig", DriftThresholds,
    "A metric above its threshold is a breach; the defaults (`DriftThresholds`) are calibrated on the sample data. "
    "`share_move`: a persona whose share moved by more than this (relative) is listed as moved.",
    share_move=(float, SHARE_MOVE),
)


WINDOW_SQL = """
select a.event_date as model_date, a.persona_id, m.memory_id, m.person_id, m.event_date, m.text, m.intent, m.sources
from memory_assignments a join intent_memories m using (memory_id)
where a.event_date between ? and ?
"""


def day_drifts(connection: duckdb.DuckDBPyConnection, first: date, last: date) -> dict[date, DayDrift]:
    """Drift of every day of [first, last] that has a model date before it."""
    if not table_exists(connection, "personas"):
        return {}
    since = first - timedelta(days=1)
    personas = _between(connection, "personas", "persona_id, label, share", since, last)
    user_personas = _between(connection, "user_personas", "person_id, persona_id, weight", since, last)
    assignments = _between(connection, "memory_assignments", "memory_id, persona_id", since, last)
    windows = read_frame(connection, WINDOW_SQL, [first, last])
    fitted = set(personas["event_date"].to_list())
    return {
        day: day_drift(
            day,
            _on(personas, day - timedelta(days=1)), _on(personas, day),
            _on(user_personas, day - timedelta(days=1)), _on(user_personas, day),
            windows.filter(pl.col("model_date") == day).drop("model_date"),
            _on(assignments, day - timedelta(days=1)),
        )
        for day in days_between(first, last)
        if {day, day - timedelta(days=1)} <= fitted
    }


def _between(connection: duckdb.DuckDBPyConnection, table: str, columns: str, first: date, last: date) -> pl.DataFrame:
    return read_frame(connection, f"select event_date, {columns} from {table} where event_date between ? and ?", [first, last])


def _on(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return frame.filter(pl.col("event_date") == day)


@asset(
    automation_condition=rerun_on_upstream_change,
    code_version="1",
    deps=[
        AssetDep(key, partition_mapping=DAY_AND_DAY_BEFORE)
        for key in ("personas", "user_personas", "memory_assignments")
    ],
    check_specs=[AssetCheckSpec(
        DRIFT_CHECK_NAME, asset="persona_drift", blocking=False,
        description="Warns when a drift metric of a day passes its threshold; names the personas that moved and how.",
    )],
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
    group_name="monitoring",
    kinds={"duckdb", "polars", "mlflow"},
    owners=OWNERS,
    description="Day-over-day persona drift, one row per metric and model date: PSI of persona shares, "
    "centroid shift, top-persona churn, new-persona uptake, personas born and retired, label changes.",
)
def persona_drift(
    context: AssetExecutionContext, config: PersonaDriftConfig, duckdb: DuckDBResource, mlflow: MlflowTracking
) -> Iterator[MaterializeResult | AssetCheckResult]:
    first, last = partition_dates(context)
    thresholds = settings_from_config(config, DriftThresholds)
    with duckdb.connect() as connection:
        drifts = day_drifts(connection, first, last)
        if drifts:
            rows = pl.concat([drift_rows(day, drift, thresholds) for day, drift in drifts.items()])
            replace_partition_rows(connection, "main.persona_drift", rows, first, last)
    if not drifts:
        context.log.warning(f"No two consecutive model dates in {first - timedelta(days=1)}..{last}: no drift to measure")
        yield MaterializeResult(metadata={"dagster/row_count": 0})
        yield AssetCheckResult(check_name=DRIFT_CHECK_NAME, passed=True, metadata={"breached_days": "none"})
        return
    log_drift_series(mlflow, rows, daily_partitions.start.date())
    breaches = rows.filter("breached")
    breached_days = sorted(set(breaches["event_date"]))
    yield MaterializeResult(metadata={
        "dagster/row_count": rows.height,
        "warming_up_days": ", ".join(day.isoformat() for day, drift in drifts.items() if drift.warming_up) or "none",
        "values": MetadataValue.md(_values_table(rows)),
        "latest_personas": MetadataValue.md(_markdown(drifts[max(drifts)].personas)),
    })
    yield AssetCheckResult(
        check_name=DRIFT_CHECK_NAME,
        passed=not breached_days,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "breached_days": ", ".join(day.isoformat() for day in breached_days) or "none",
            "breaches": MetadataValue.json({
                f"{row['event_date']} {row['metric']}": f"{row['value']:.3f} > {row['threshold']:.3f}"
                for row in breaches.iter_rows(named=True)
            }),
            "moved_personas": MetadataValue.json({
                day.isoformat(): moved_personas(drifts[day].personas, thresholds.max_centroid_shift, config.share_move)
                for day in breached_days
            }),
        },
    )


def _values_table(rows: pl.DataFrame) -> str:
    """Days as rows, metrics as columns; a breached value is marked with '!'."""
    flag = pl.when("breached").then(pl.lit(" !")).otherwise(pl.lit(""))
    marked = rows.with_columns(cell=pl.format("{}{}", pl.col("value").round(3), flag))
    return _markdown(marked.pivot(on="metric", index="event_date", values="cell").sort("event_date"))


def _markdown(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)
