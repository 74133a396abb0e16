"""Drift metrics as MLflow series: one long-lived run, one point per metric and model date.

The step is the model date's index among the partitions, and the point's timestamp
is that date, so the MLflow charts read as a time line whichever x-axis is chosen.
Re-materialising a day adds a second point at the same step; MLflow keeps history.
"""

from datetime import UTC, date, datetime, time

import polars as pl
from mlflow.entities import Metric

from dagster_project.tracking.resource import MlflowTracking

DRIFT_RUN_NAME = "persona-drift"
RUN_KIND_TAG = "personas.kind"


def drift_run_id(tracking: MlflowTracking) -> str:
    """The experiment's drift run, created on first use."""
    experiment_id = tracking.activate()
    client = tracking.client()
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_KIND_TAG}` = 'drift'", max_results=1)
    if runs:
        return runs[0].info.run_id
    run = client.create_run(experiment_id, run_name=DRIFT_RUN_NAME, tags={RUN_KIND_TAG: "drift"})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def log_drift_series(tracking: MlflowTracking, rows: pl.DataFrame, first_partition: date) -> None:
    """Log `persona_drift` rows (event_date, metric, value) with step = days since `first_partition`."""
    metrics = [
        Metric(
            key=row["metric"],
            value=row["value"],
            timestamp=int(datetime.combine(row["event_date"], time(), UTC).timestamp() * 1000),
            step=(row["event_date"] - first_partition).days,
        )
        for row in rows.iter_rows(named=True)
    ]
    tracking.client().log_batch(drift_run_id(tracking), metrics=metrics)
