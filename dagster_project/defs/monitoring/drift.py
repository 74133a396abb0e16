"""`persona_drift`: how each model date's personas moved against the day before.

Reads the persona tables of the range and the day before it, calls the pure
`science.drift`, writes one row per metric and day, logs every metric to MLflow as a
series, and reports a non-blocking check (severity WARN) with one verdict per day, failed
on a day a metric passes its threshold: drift is a reason to look, not to stop serving.
A breached day's model version gets a pending review (`persona_reviews`, tag `review` on
the version): `champion_model` keeps the alias before it until someone approves it.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import duckdb
import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
)

from dagster_project.asset_defaults import daily_asset
from dagster_project.markdown import markdown_table
from dagster_project.metadata import column_schema, day_check_evaluations, day_metadata
from dagster_project.partitions import daily_partitions, days_between, partition_dates
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.review.store import PENDING, Review, open_reviews, read_reviews
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
from dagster_project.tracking.registry import REVIEW_TAG, newest_versions, tag_version, version_id
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.tracking.store import MlflowStore
from dagster_project.warehouse import read_frame, replace_partition_rows, table_exists

DRIFT_CHECK_NAME = "persona_drift_within_thresholds"
DAY_AND_DAY_BEFORE = TimeWindowPartitionMapping(start_offset=-1)


PersonaDriftConfig = config_from_settings(
    "PersonaDriftConfig", DriftThresholds,
    "A metric above its threshold (and, for share_psi and new_persona_uptake, above what chance alone reaches on the "
    "day's counts) is a breach; the defaults (`DriftThresholds`) are calibrated on the sample data. "
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
    # Births and retirements as the persona step recorded them (days fitted before the lineage existed have none).
    lineage = (
        _between(connection, "persona_lineage", "persona_id, event, level", first, last).filter(pl.col("level") == "persona")
        if table_exists(connection, "persona_lineage") else None
    )
    fitted = set(personas["event_date"].to_list())
    return {
        day: day_drift(
            day,
            _on(personas, day - timedelta(days=1)), _on(personas, day),
            _on(user_personas, day - timedelta(days=1)), _on(user_personas, day),
            windows.filter(pl.col("model_date") == day).drop("model_date"),
            _on(assignments, day - timedelta(days=1)),
            _on(lineage, day) if lineage is not None and not _on(lineage, day).is_empty() else None,
        )
        for day in days_between(first, last)
        if {day, day - timedelta(days=1)} <= fitted
    }


def breach_text(row: dict) -> str:
    """'0.263 > 0.150', or '0.412 > 0.150 and > 0.351, what chance alone reaches' where chance passes the threshold."""
    floor = row.get("chance_floor")
    chance_is_higher = floor is not None and floor > row["threshold"]
    beyond_chance = f" and > {floor:.3f}, what chance alone reaches" if chance_is_higher else ""
    return f"{row['value']:.3f} > {row['threshold']:.3f}{beyond_chance}"


def open_breach_reviews(
    connection: duckdb.DuckDBPyConnection, tracking: MlflowStore, rows: pl.DataFrame
) -> dict[date, Review]:
    """Each breached day's newest model version gets a pending review naming the metrics that breached and by
    how much; a review already decided for that version stays decided. The status is tagged on the version."""
    breaches = rows.filter("breached").sort("event_date", "metric")
    if breaches.is_empty():
        return {}
    newest = newest_versions(tracking)
    reasons = {
        day: "; ".join(f"{row['metric']} {breach_text(row)}" for row in group.iter_rows(named=True))
        for (day,), group in breaches.group_by("event_date", maintain_order=True)
    }
    opened = {day: (version_id(newest[day]), reason) for day, reason in reasons.items() if day in newest}
    open_reviews(connection, opened, datetime.now(UTC).replace(tzinfo=None))
    reviews = read_reviews(connection)
    current = {day: reviews[(day, version)] for day, (version, _) in opened.items()}
    for review in current.values():
        tag_version(tracking, review.version, REVIEW_TAG, review.status)
    return current


def _review_note(review: Review) -> str:
    if review.status == PENDING:
        return (f"version {review.version} pending review: the champion stays before it until "
                f"`personas review approve {review.day}` (or `reject`)")
    return f"version {review.version} {review.status} by {review.decided_by}"


def _between(connection: duckdb.DuckDBPyConnection, table: str, columns: str, first: date, last: date) -> pl.DataFrame:
    return read_frame(
        connection, f"select event_date, {columns} from {table} where event_date between ? and ?", [first, last]
    )


def _on(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return frame.filter(pl.col("event_date") == day)


@daily_asset(
    __name__,
    deps=[
        AssetDep(key, partition_mapping=DAY_AND_DAY_BEFORE)
        for key in ("personas", "user_personas", "memory_assignments")
    ],
    check_specs=[AssetCheckSpec(
        DRIFT_CHECK_NAME, asset="persona_drift", blocking=False, partitions_def=daily_partitions,
        description="Warns when a drift metric of a day passes its threshold; names the personas that moved and how, "
        "and the review that holds the champion until someone approves the day.",
    )],
    group_name="monitoring",
    kinds={"duckdb", "polars", "mlflow"},
    description="Day-over-day persona drift, one row per metric and model date: PSI of persona shares, "
    "centroid shift, top-persona churn, new-persona uptake, personas born and retired, label changes.",
)
def persona_drift(
    context: AssetExecutionContext, config: PersonaDriftConfig, duckdb: DuckDBResource, mlflow: MlflowTracking
) -> Iterator[MaterializeResult | Output | AssetCheckEvaluation]:
    first, last = partition_dates(context)
    thresholds = settings_from_config(config, DriftThresholds)
    reviews: dict[date, Review] = {}
    with duckdb.connect() as connection:
        drifts = day_drifts(connection, first, last)
        if drifts:
            rows = pl.concat([drift_rows(day, drift, thresholds) for day, drift in drifts.items()])
            replace_partition_rows(connection, "main.persona_drift", rows, first, last)
            reviews = open_breach_reviews(connection, mlflow.store(), rows)
    day_metadata(context, {
        day: _day_metadata(rows.filter(pl.col("event_date") == day), drifts[day]) if day in drifts
        else {"dagster/row_count": 0, "measured": "no: no model date the day before"}
        for day in days_between(first, last)
    })
    if drifts:
        log_drift_series(mlflow.store(), rows, daily_partitions.start.date())
        yield MaterializeResult(metadata={"dagster/column_schema": column_schema(rows)})
    else:
        context.log.warning(f"No two consecutive model dates in {first - timedelta(days=1)}..{last}: no drift to measure")
        yield MaterializeResult()
    yield from day_check_evaluations(context, AssetCheckKey(context.asset_key, DRIFT_CHECK_NAME), {
        day: _day_verdict(rows.filter(pl.col("event_date") == day), drifts[day], reviews.get(day), thresholds,
                          config.share_move) if day in drifts
        else (True, AssetCheckSeverity.WARN, {"breached": "none", "measured": "no: no model date the day before"})
        for day in days_between(first, last)
    }, blocking=False)


def _day_verdict(
    rows: pl.DataFrame, drift: DayDrift, review: Review | None, thresholds: DriftThresholds, share_move: float
) -> tuple[bool, AssetCheckSeverity, dict]:
    """A model date's drift verdict: the metrics that breached and by how much, the personas that moved and how,
    and the review that holds the day's version."""
    breaches = rows.filter("breached").sort("metric")
    texts = {row["metric"]: breach_text(row) for row in breaches.iter_rows(named=True)}
    return breaches.is_empty(), AssetCheckSeverity.WARN, {
        "breached": "; ".join(f"{metric} {text}" for metric, text in texts.items()) or "none",
        "breaches": MetadataValue.json(texts),
        "review": _review_note(review) if review else "none",
        "moved_personas": MetadataValue.json(
            moved_personas(drift.personas, thresholds.max_centroid_shift, share_move) if texts else []),
    }


def _day_metadata(rows: pl.DataFrame, drift: DayDrift) -> dict:
    """A model date's metric values, the metrics that breached, and what each persona did."""
    return {
        "dagster/row_count": rows.height,
        **dict(zip(rows["metric"], rows["value"], strict=True)),
        "breached_metrics": ", ".join(rows.filter("breached")["metric"]) or "none",
        "warming_up": drift.warming_up,
        "personas": MetadataValue.md(markdown_table(drift.personas.columns, drift.personas.iter_rows())),
    }
