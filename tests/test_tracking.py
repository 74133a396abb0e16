"""MLflow runs, registered versions, the champion alias and drift monitoring over the real graph.

Seven generated days with the planted drift on the last one: the days before it must
stay quiet, the drift day must raise the warning. Runs against the home's own SQLite
MLflow store; later tests re-run days on top of the first run (two processes at once,
and behind a failing blocking check), so they look only at what they add.
"""

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import mlflow
import polars as pl
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    asset_check,
    materialize,
)
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

from dagster_project.definitions import defs
from dagster_project.drift.assets import DRIFT_CHECK_NAME
from dagster_project.generator import generate
from dagster_project.partitions import daily_partitions
from dagster_project.tracking.drift_series import drift_run_id
from dagster_project.tracking.fit_runs import DAGSTER_RUN_TAG, fit_sanity
from dagster_project.tracking.registry import (
    PARTITION_DATE_TAG,
    SANITY_TAG,
    champion_decision,
    champion_uri,
    current_champion,
)
from dagster_project.tracking.resource import MlflowTracking
from pipeline_helpers import materialize_range, query, using_home

START = date(2026, 10, 1)
DAYS = [START + timedelta(days=offset) for offset in range(7)]
DRIFT_DAY = DAYS[-1]
WITHOUT_UTILITY = AssetSelection.all() - AssetSelection.assets("persona_utility")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """The home after one range run, with that run's result and the registry as it left it."""
    with using_home(tmp_path_factory.mktemp("tracking")) as home:
        generate(home, days=len(DAYS), people=400, events_per_day=2000, seed=3, start_date=START, world="easy",
                 drift_day=len(DAYS) - 1)
        result = materialize_range(DAYS[0], DAYS[-1], selection=WITHOUT_UTILITY)
        tracking = MlflowTracking()
        versions = tracking.client().search_model_versions(f"name = '{tracking.registered_model_name}'")
        yield home, result, tracking, versions


def test_every_fitted_day_is_one_run_and_one_model_version(tracked):
    _, result, tracking, versions = tracked
    assert result.success
    assert sorted(version.tags[PARTITION_DATE_TAG] for version in versions) == [day.isoformat() for day in DAYS]

    client = tracking.client()
    runs = [run for run in client.search_runs([tracking.activate()]) if "partition_date" in run.data.params]
    assert sorted(run.data.params["partition_date"] for run in runs) == [day.isoformat() for day in DAYS]
    assert {run.data.tags.get(DAGSTER_RUN_TAG) for run in runs} == {result.run_id}  # crash recovery ends only its own
    run = next(run for run in runs if run.data.params["partition_date"] == DRIFT_DAY.isoformat())
    assert {"window_days", "recent_share", "k_min", "k_max", "chosen_k", "vectorizer_min_df"} <= set(run.data.params)
    assert {"quality_mean", "truthfulness_min", "n_personas", "silhouette", "n_memories"} <= set(run.data.metrics)
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)} >= {
        "persona_report.md", "persona_shares.png"}
    labels = [row[0] for row in query("select label from personas where event_date = ?", [DRIFT_DAY])]
    report = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="persona_report.md",
                                                      tracking_uri=tracking.tracking_uri)).read_text()
    assert all(label in report for label in labels)


def test_the_champion_assigns_new_memories_as_the_asset_did(tracked):
    _, _, tracking, _ = tracked
    tracking.activate()
    champion = current_champion(tracking)
    assert champion.tags[PARTITION_DATE_TAG] == DRIFT_DAY.isoformat()

    model = mlflow.pyfunc.load_model(champion_uri(tracking))
    assigned = pl.DataFrame(
        query("""select m.text, m.intent, m.sources, a.persona_id, a.distance
                 from intent_memories m join memory_assignments a using (memory_id)
                 where a.event_date = ? and m.event_date = ? order by m.memory_id""", [DRIFT_DAY, DRIFT_DAY]),
        schema=["text", "intent", "sources", "persona_id", "distance"], orient="row",
    )
    predicted = model.predict(assigned.select("text", "intent", "sources").to_pandas())
    assert assigned.height > 100
    assert predicted["persona_id"].tolist() == assigned["persona_id"].to_list()
    assert predicted["distance"].to_numpy() == pytest.approx(assigned["distance"].to_numpy(), abs=1e-5)


def test_the_drift_day_raises_the_drift_warning_and_the_days_before_do_not(tracked):
    _, result, _, _ = tracked
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.asset_check_key.name == DRIFT_CHECK_NAME]
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.metadata["breached_days"].value == DRIFT_DAY.isoformat()
    moved = evaluation.metadata["moved_personas"].value[DRIFT_DAY.isoformat()]
    assert "people new to it" in moved[0]

    rows = query("select event_date, metric, breached from persona_drift")
    assert {day for day, _, _ in rows} == set(DAYS[1:])
    assert {day for day, _, breached in rows if breached} == {DRIFT_DAY}


def test_drift_metrics_are_mlflow_series_by_day(tracked):
    _, _, tracking, _ = tracked
    history = tracking.client().get_metric_history(drift_run_id(tracking), "new_persona_uptake")
    first_partition = daily_partitions.start.date()
    assert sorted(point.step for point in history) == [(day - first_partition).days for day in DAYS[1:]]


def test_two_processes_materialising_different_days_at_once_do_not_lock(tracked):
    """Both runs use the home's persisted instance, whose `duckdb` pool (limit 1) queues the writers."""
    home, _, tracking, versions_before = tracked
    days = DAYS[-2:]
    script = (
        "import sys; from datetime import date; from dagster import AssetSelection, DagsterInstance; "
        "from pipeline_helpers import materialize_day\n"
        "with DagsterInstance.get() as instance:\n"
        "    result = materialize_day(date.fromisoformat(sys.argv[1]), instance=instance, raise_on_error=False,\n"
        "        selection=AssetSelection.assets('memory_assignments', 'personas', 'user_personas',"
        " 'persona_drift', 'champion_model'))\n"
        "sys.exit(0 if result.success else 1)\n"
    )
    environment = {**os.environ, "PERSONAS_HOME": str(home), "PYTHONPATH": str(Path(__file__).parent)}
    # Create the instance's own storage once first (as `personas init` does): two processes
    # creating Dagster's SQLite schema at the same moment race on it.
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    processes = [
        subprocess.Popen([sys.executable, "-c", script, day.isoformat()], env=environment,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for day in days
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert "database is locked" not in output
        assert process.returncode == 0, output[-3000:]
    versions = tracking.client().search_model_versions(f"name = '{tracking.registered_model_name}'")
    known = {version.version for version in versions_before}
    added = sorted(version.tags[PARTITION_DATE_TAG] for version in versions if version.version not in known)
    assert added == [day.isoformat() for day in days]


@asset_check(asset="personas", blocking=True)
def personas_rejected() -> AssetCheckResult:
    """Stands in for a Great Expectations gate on `personas` that fails."""
    return AssetCheckResult(passed=False)


def test_a_failed_blocking_check_upstream_keeps_the_champion_where_it_was(tracked):
    _, _, tracking, _ = tracked
    champion_before = current_champion(tracking)
    result = materialize(
        [*defs.assets, personas_rejected],
        selection=AssetSelection.assets("memory_assignments", "personas", "user_personas", "champion_model"),
        resources=defs.resources, partition_key=DRIFT_DAY.isoformat(), raise_on_error=False,
    )
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert AssetKey("personas") in materialized and AssetKey("champion_model") not in materialized
    newest = max(tracking.client().search_model_versions(f"name = '{tracking.registered_model_name}'"),
                 key=lambda version: int(version.version))
    assert newest.tags[PARTITION_DATE_TAG] == DRIFT_DAY.isoformat() and newest.version != champion_before.version
    assert current_champion(tracking).version == champion_before.version


def _version(number: int, day: date, sanity: bool) -> ModelVersion:
    tags = [ModelVersionTag(PARTITION_DATE_TAG, day.isoformat()), ModelVersionTag(SANITY_TAG, str(sanity).lower())]
    return ModelVersion("persona-model", str(number), 0, tags=tags)


def test_the_champion_moves_only_to_a_sane_version_of_a_day_not_older_than_its_own():
    assert champion_decision(_version(2, DAYS[1], True), _version(1, DAYS[0], True)).promoted
    assert champion_decision(_version(3, DAYS[1], True), _version(2, DAYS[1], True)).promoted
    assert champion_decision(_version(1, DAYS[0], True), None).promoted
    assert not champion_decision(_version(2, DAYS[1], False), _version(1, DAYS[0], True)).promoted
    assert not champion_decision(_version(3, DAYS[0], True), _version(2, DAYS[1], True)).promoted
    assert not champion_decision(None, _version(2, DAYS[1], True)).promoted


def test_fit_sanity_wants_labelled_personas_and_two_personas():
    personas = pl.DataFrame({"persona_id": [1, 2], "label": ["tennis", "cooking"], "truthfulness": [1.0, 0.5]})
    assert fit_sanity(personas).passed  # held-out truthfulness is a measure, not a gate
    unsupported = fit_sanity(personas.with_columns(label=pl.Series(["tennis", "unlabelled"])))
    assert not unsupported.passed and "persona 2 is unlabelled" in unsupported.reasons[0]
    assert not fit_sanity(personas.head(1)).passed
