"""Drift metrics as MLflow series: one long-lived run, one point per metric and model date.

The step is the model date's index among the partitions (days since the home's first data
day), and the point's timestamp is that date, so the MLflow charts read as a time line
whichever x-axis is chosen. Each metric's threshold is logged beside it as a series
`<metric>_threshold` (a threshold can be recalibrated, which a run's immutable params could
not record). Re-materialising a day adds a second point at the same step; MLflow keeps history.
"""

from datetime import UTC, date, datetime, time

import polars as pl
from mlflow.entities import Metric

from dagster_project.tracking.store import MlflowStore

DRIFT_RUN_NAME = "persona-drift"
RUN_KIND_TAG = "personas.kind"
DESCRIPTION_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
DRIFT_RUN_DESCRIPTION = (
    "Day-over-day persona drift (the `persona_drift` asset): one point per metric and model date, timestamped "
    "with the model date, step = days since the home's first data day. `<metric>_threshold` is the limit a value "
    "must pass to breach (the WARN check `persona_drift_within_thresholds`); the first days are a warm-up, not judged."
)


def drift_run_id(tracking: MlflowStore) -> str:
    """The experiment's drift run, created on first use."""
    experiment_id = tracking.activate()
    client = tracking.client()
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_KIND_TAG}` = 'drift'", max_results=1)
    if runs:
        return runs[0].info.run_id
    run = client.create_run(experiment_id, run_name=DRIFT_RUN_NAME,
                            tags={RUN_KIND_TAG: "drift", DESCRIPTION_TAG: DRIFT_RUN_DESCRIPTION})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def log_drift_series(tracking: MlflowStore, rows: pl.DataFrame, first_partition: date) -> None:
    """Log rows (event_date, metric, value, and optionally threshold and chance_floor), each value, its threshold
    and its chance floor at timestamp = the model date, step = days since `first_partition`."""
    columns = {"value": ""} | {column: f"_{column}" for column in ("threshold", "chance_floor") if column in rows.columns}
    metrics = [
        Metric(
            key=row["metric"] + suffix,
            value=row[column],
            timestamp=int(datetime.combine(row["event_date"], time(), UTC).timestamp() * 1000),
            step=(row["event_date"] - first_partition).days,
        )
        for row in rows.iter_rows(named=True)
        for column, suffix in columns.items()
        if row[column] is not None
    ]
    tracking.client().log_batch(drift_run_id(tracking), metrics=metrics)
