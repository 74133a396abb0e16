"""MLflow runs, registered versions, the champion alias, drift monitoring and its human review over the real graph.

Seven generated days with the planted drift on the last one, fitted in one range run whose
MLflow logging runs in a worker process (later runs of one to three days log in their own): the days before it must
stay quiet, the drift day must raise the warning and a pending review that holds the
champion on the day before. Runs against the home's own SQLite MLflow store; later tests
run in file order on top of the first run (reject the review, refit the last two days in
two processes at once, approve the refit's review, refit behind a failing blocking check,
relabel a persona and refit three days), so they look only at what they add.
"""

import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    asset_check,
    materialize,
)
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

from dagster_project.api.service import PersonaService
from dagster_project.cli import check_summary, main
from dagster_project.definitions import defs
from dagster_project.defs.monitoring.drift import DRIFT_CHECK_NAME, breach_text
from dagster_project.generator import generate
from dagster_project.partitions import daily_partitions
from dagster_project.review.actions import champion_status
from dagster_project.review.store import APPROVED, PENDING, REJECTED, Review
from dagster_project.science.daily import DayFit, PersonaSettings
from dagster_project.science.drift import DriftThresholds
from dagster_project.tracking import fit_runs
from dagster_project.tracking.drift_series import drift_run_id
from dagster_project.tracking.fit_runs import DAGSTER_RUN_TAG, SHARE_PLOT, WORKER_MIN_DAYS, FitLogger, fit_sanity
from dagster_project.tracking.registry import (
    DECISION_TAG,
    PARTITION_DATE_TAG,
    REVIEW_TAG,
    SANITY_TAG,
    champion_decision,
    champion_uri,
    current_champion,
    day_version,
    version_day,
)
from dagster_project.tracking.store import MlflowStore
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
        with pytest.MonkeyPatch.context() as patch:  # the worker logs this range whatever the measured rule
            patch.setattr(fit_runs, "WORKER_MIN_DAYS", len(DAYS))
            result = materialize_range(DAYS[0], DAYS[-1], selection=WITHOUT_UTILITY)
        tracking = MlflowStore()
        versions = tracking.client().search_model_versions(f"name = '{tracking.registered_model_name}'")
        yield home, result, tracking, versions


def test_every_fitted_day_is_one_run_and_one_model_version(tracked):
    _, result, tracking, versions = tracked
    assert result.success
    assert [int(version.version) for version in sorted(versions, key=version_day)] == list(range(1, len(DAYS) + 1))
    assert sorted(version.tags[PARTITION_DATE_TAG] for version in versions) == [day.isoformat() for day in DAYS]

    client = tracking.client()
    runs = [run for run in client.search_runs([tracking.activate()]) if "partition_date" in run.data.params]
    assert sorted(run.data.params["partition_date"] for run in runs) == [day.isoformat() for day in DAYS]
    assert {run.data.tags.get(DAGSTER_RUN_TAG) for run in runs} == {result.run_id}  # crash recovery ends only its own
    run = next(run for run in runs if run.data.params["partition_date"] == DRIFT_DAY.isoformat())
    assert run.info.run_name == f"persona-model {DRIFT_DAY}"
    description = run.data.tags["mlflow.note.content"]
    assert description.startswith(
        f"Personas of {DRIFT_DAY}, fitted on the intent memories of {DRIFT_DAY - timedelta(days=27)}"
    )
    [version] = [version for version in versions if version.tags[PARTITION_DATE_TAG] == DRIFT_DAY.isoformat()]
    assert version.description == description
    assert client.get_registered_model(tracking.registered_model_name).description
    assert {"window_days", "recent_share", "k_min", "k_max", "chosen_k", "vectorizer_min_df"} <= set(run.data.params)
    assert {"quality_mean", "truthfulness_min", "n_personas", "silhouette", "n_memories"} <= set(run.data.metrics)
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)} >= {"persona_report.md", SHARE_PLOT}
    plot = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=SHARE_PLOT,
                                                    tracking_uri=tracking.tracking_uri)).read_text()
    assert plot.lstrip().startswith("<?xml") and "<svg" in plot
    # text kept as text (not glyph paths): the title and every persona of the day named in the legend
    day_personas = {row[0] for row in query("select persona_id from personas where event_date = ?", [DRIFT_DAY])}
    assert "Persona shares over time" in plot and all(f">{persona_id}: " in plot for persona_id in day_personas)
    labels = [row[0] for row in query("select label from personas where event_date = ?", [DRIFT_DAY])]
    report = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="persona_report.md",
                                                      tracking_uri=tracking.tracking_uri)).read_text()
    assert all(label in report for label in labels)


def test_the_champion_assigns_new_memories_as_the_asset_did(tracked):
    _, _, tracking, _ = tracked
    tracking.activate()
    champion = current_champion(tracking)
    day = DAYS[-2]  # the drift day waits for its review
    assert champion.tags[PARTITION_DATE_TAG] == day.isoformat()

    model = mlflow.pyfunc.load_model(champion_uri(tracking))
    assigned = pl.DataFrame(
        query("""select m.text, m.intent, m.sources, a.persona_id, a.distance
                 from intent_memories m join memory_assignments a using (memory_id)
                 where a.event_date = ? and m.event_date = ? order by m.memory_id""", [day, day]),
        schema=["text", "intent", "sources", "persona_id", "distance"], orient="row",
    )
    predicted = model.predict(assigned.select("text", "intent", "sources").to_pandas())
    assert assigned.height > 100
    assert predicted["persona_id"].tolist() == assigned["persona_id"].to_list()
    assert predicted["distance"].to_numpy() == pytest.approx(assigned["distance"].to_numpy(), abs=1e-5)


def test_a_logged_model_serves_its_own_input_example(tracked):
    """The serving-input check `persona_model` skips per day (it loads the model back), run once here."""
    _, _, tracking, versions = tracked
    tracking.activate()
    uri = f"models:/{tracking.registered_model_name}/{versions[0].version}"
    model = mlflow.pyfunc.load_model(uri)  # checks the logged requirements against this environment
    example = model.input_example
    assert len(example) == 3 and mlflow.models.convert_input_example_to_serving_input(example)
    predicted = model.predict(example)  # through the signature's input schema, as serving does
    labels = dict(query("select persona_id, label from personas where event_date = ?", [version_day(versions[0])]))
    assert len(predicted) == 3 and all(labels[row.persona_id] == row.label for row in predicted.itertuples())


def test_a_failure_in_the_logging_worker_fails_with_its_error_and_leaves_no_process(tmp_path):
    day = START
    broken = DayFit(  # no metrics: the run's description cannot be written
        assignments=pl.DataFrame(), personas=pl.DataFrame({"event_date": [day], "persona_id": [1], "label": ["x"],
                                                            "share": [1.0]}),
        user_personas=pl.DataFrame({"person_id": ["p"]}), vectorizer=None, centroids=np.zeros((1, 1)),
        persona_ids=np.array([1]), next_persona_id=2,
    )
    memories = pl.DataFrame({"memory_id": ["m"], "event_date": [day], "summary": ["s"], "text": ["t"], "intent": ["i"],
                             "sources": [["web"]]})
    with using_home(tmp_path), pytest.raises(KeyError, match="n_memories") as raised:
        with FitLogger(MlflowStore(), PersonaSettings(), memories, None, "run", days_to_fit=WORKER_MIN_DAYS) as logger:
            logger.log(broken)
            logger.versions()
    assert "_RemoteTraceback" in type(raised.value.__cause__).__name__  # the worker's own traceback
    assert not multiprocessing.active_children()


def _drift_verdicts(result) -> dict[str, AssetCheckEvaluation]:
    """The run's drift check evaluations by partition day: one per day."""
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_check_key.name == DRIFT_CHECK_NAME]
    by_day = {evaluation.partition: evaluation for evaluation in evaluations}
    assert len(by_day) == len(evaluations)
    return by_day


def test_the_drift_day_raises_the_drift_warning_and_the_days_before_do_not(tracked):
    _, result, _, _ = tracked
    verdicts = _drift_verdicts(result)
    assert sorted(verdicts) == [day.isoformat() for day in DAYS]
    assert [day for day, evaluation in verdicts.items() if not evaluation.passed] == [DRIFT_DAY.isoformat()]
    assert {evaluation.severity for evaluation in verdicts.values()} == {AssetCheckSeverity.WARN}
    assert not any(evaluation.blocking for evaluation in verdicts.values())
    evaluation = verdicts[DRIFT_DAY.isoformat()]
    assert evaluation.metadata["breached"].value.startswith("new_persona_uptake ")
    assert "new_persona_uptake" in evaluation.metadata["breaches"].value
    assert "people new to it" in evaluation.metadata["moved_personas"].value[0]
    assert verdicts[DAYS[1].isoformat()].metadata["breached"].value == "none"
    assert verdicts[DAYS[0].isoformat()].metadata["measured"].value.startswith("no")  # no model date the day before
    # Each day's verdict is tied to that day's materialisation of persona_drift in this run.
    drift_days = {event.partition for event in result.get_asset_materialization_events()
                  if event.asset_key == AssetKey("persona_drift")}
    assert drift_days == set(verdicts)
    assert {evaluation.target_materialization_data.run_id for evaluation in verdicts.values()} == {result.run_id}
    # The command line folds the days back into one line per check, naming the breached day.
    drift_lines = [line for line in check_summary(result).splitlines() if DRIFT_CHECK_NAME in line]
    assert len(drift_lines) == 1
    assert drift_lines[0].split()[0] == "WARNING" and f"({DRIFT_DAY}: new_persona_uptake " in drift_lines[0]

    rows = query("select event_date, metric, breached from persona_drift")
    assert {day for day, _, _ in rows} == set(DAYS[1:])
    assert {day for day, _, breached in rows if breached} == {DRIFT_DAY}


def _reviews() -> list[tuple]:
    return query("select day, version, status, reason, decided_by, decided_at from persona_reviews "
                 "order by day, version::int")


def _cli(home: Path, *arguments: str) -> int:
    return main([*arguments, "--home", str(home)])


def test_the_drift_day_holds_the_champion_with_a_pending_review(tracked):
    home, result, tracking, _ = tracked
    drift_version = day_version(tracking, DRIFT_DAY)
    assert current_champion(tracking).tags[PARTITION_DATE_TAG] == DAYS[-2].isoformat()
    ((day, version, status, reason, decided_by, _),) = _reviews()
    assert (day, version, status, decided_by) == (DRIFT_DAY, str(drift_version.version), PENDING, None)
    assert reason.startswith("new_persona_uptake ") and " > " in reason
    assert drift_version.tags[REVIEW_TAG] == PENDING and drift_version.tags[DECISION_TAG] == "held"

    assert "pending review" in _drift_verdicts(result)[DRIFT_DAY.isoformat()].metadata["review"].value
    champion_events = [event for event in result.get_asset_materialization_events()
                       if event.asset_key == AssetKey("champion_model")]
    assert {event.materialization.metadata["held_days"].value for event in champion_events} == {DRIFT_DAY.isoformat()}
    assert f"personas review approve {DRIFT_DAY}" in champion_status(home)


def test_reject_keeps_the_old_champion_and_is_final_for_that_version(tracked, capsys):
    home, _, tracking, _ = tracked
    champion_before = current_champion(tracking).version
    assert _cli(home, "review", "reject", DRIFT_DAY.isoformat(), "--by", "rita") == 0
    assert current_champion(tracking).version == champion_before
    ((_, version, status, _, decided_by, decided_at),) = _reviews()
    assert (status, decided_by) == (REJECTED, "rita") and decided_at is not None
    assert tracking.client().get_model_version(tracking.registered_model_name, version).tags[REVIEW_TAG] == REJECTED

    capsys.readouterr()
    assert _cli(home, "review", "approve", DRIFT_DAY.isoformat()) == 2
    assert "already rejected by rita" in capsys.readouterr().err
    assert current_champion(tracking).version == champion_before
    assert f"Rerun {DRIFT_DAY}" in champion_status(home)


def test_drift_metrics_are_mlflow_series_by_day(tracked):
    _, _, tracking, _ = tracked
    history = tracking.client().get_metric_history(drift_run_id(tracking), "new_persona_uptake")
    first_partition = daily_partitions.start.date()
    assert sorted(point.step for point in history) == [(day - first_partition).days for day in DAYS[1:]]
    assert sorted(point.timestamp for point in history) == [  # the model date, whatever the x-axis chosen
        int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000) for day in DAYS[1:]]
    thresholds = tracking.client().get_metric_history(drift_run_id(tracking), "new_persona_uptake_threshold")
    assert sorted((point.step, point.value) for point in thresholds) == [
        ((day - first_partition).days, DriftThresholds().new_persona_uptake) for day in DAYS[1:]]
    floors = tracking.client().get_metric_history(drift_run_id(tracking), "share_psi_chance_floor")
    assert sorted(point.step for point in floors) == [(day - first_partition).days for day in DAYS[1:]]
    assert all(0 <= point.value < 1 for point in floors)
    assert not tracking.client().get_metric_history(drift_run_id(tracking), "label_changes_chance_floor")  # no model


def test_a_breach_names_what_chance_alone_reaches_when_that_is_the_higher_bar():
    sparse_psi = {"value": 0.618, "threshold": 0.15, "chance_floor": 0.543}
    assert breach_text(sparse_psi) == "0.618 > 0.150 and > 0.543, what chance alone reaches"
    assert breach_text(sparse_psi | {"chance_floor": 0.07}) == "0.618 > 0.150"  # the threshold is the higher bar
    assert breach_text({"value": 0.2, "threshold": 0.15, "chance_floor": None}) == "0.200 > 0.150"


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


def test_approve_moves_the_champion_to_the_refit_drift_day_and_the_api_serves_it(tracked):
    """The refit of the last two days (test above) registered a new drift-day version: a new, pending review."""
    home, _, tracking, _ = tracked
    drift_version = day_version(tracking, DRIFT_DAY)
    assert current_champion(tracking).tags[PARTITION_DATE_TAG] == DAYS[-2].isoformat()
    assert [(row[1], row[2]) for row in _reviews()][-1] == (str(drift_version.version), PENDING)

    assert _cli(home, "review", "approve", DRIFT_DAY.isoformat(), "--by", "ann") == 0
    champion = current_champion(tracking)
    assert champion.version == drift_version.version
    assert champion.tags[REVIEW_TAG] == APPROVED and champion.tags[DECISION_TAG] == "promoted"
    assert [(row[2], row[4]) for row in _reviews()] == [(REJECTED, "rita"), (APPROVED, "ann")]
    assert "no drift review open" in champion_status(home)

    health = PersonaService(home, lock_wait_seconds=1.0).health()
    assert (health["as_of"], health["model_version"]) == (DRIFT_DAY.isoformat(), str(drift_version.version))


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


def test_a_label_override_survives_three_more_fitted_days(tracked):
    home, _, tracking, _ = tracked
    day, later = DAYS[3], DAYS[4:]
    persona_id, computed = query(
        "select persona_id, label from personas where event_date = ? and persona_id in (select persona_id from "
        "personas where event_date >= ? group by 1 having count(*) = ?) order by share desc limit 1",
        [day, later[0], len(later)])[0]
    assert _cli(home, "label", "set", str(persona_id), "Weekend tennis crowd", "--by", "ann") == 0

    assert len(later) < WORKER_MIN_DAYS  # logged in the step's own process
    assert materialize_range(later[0], later[-1],
                             selection=AssetSelection.assets("memory_assignments", "personas", "user_personas")).success
    rows = query("select event_date, label, computed_label, label_source, label_set_by from personas "
                 "where persona_id = ? and event_date >= ? order by event_date", [persona_id, day])
    assert [row[0] for row in rows] == [day, *later]
    assert {row[1:2] + row[3:] for row in rows} == {("Weekend tennis crowd", "human", "ann")}
    assert rows[0][2] == computed and all(row[2] and row[2] != "Weekend tennis crowd" for row in rows)
    newest = tracking.client().get_model_version(tracking.registered_model_name,
                                                 day_version(tracking, later[-1]).version)
    model = mlflow.pyfunc.load_model(f"models:/{newest.name}/{newest.version}").unwrap_python_model()
    assert "Weekend tennis crowd" in model.labels.tolist()

    assert _cli(home, "label", "clear", str(persona_id), "--by", "ann") == 0
    assert query("select count(*) from personas where persona_id = ? and (label <> computed_label "
                 "or label_source <> 'computed')", [persona_id]) == [(0,)]
    assert query("select label, set_by from persona_label_overrides order by set_at") == [
        ("Weekend tennis crowd", "ann"), (None, "ann")]


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


def test_a_breached_day_and_every_day_after_it_wait_for_approval_and_never_move_the_champion_back():
    def review(day: date, status: str) -> Review:
        return Review(day, "9", status, "new_persona_uptake 0.200 > 0.120", "ann" if status != PENDING else None)

    champion = _version(1, DAYS[0], True)
    pending = champion_decision(_version(2, DAYS[1], True), champion, review(DAYS[1], PENDING))
    assert not pending.promoted and pending.held and "new_persona_uptake" in pending.reason
    rejected = champion_decision(_version(2, DAYS[1], True), champion, review(DAYS[1], REJECTED))
    assert not rejected.promoted and not rejected.held
    assert champion_decision(_version(2, DAYS[1], True), champion, review(DAYS[1], APPROVED)).promoted
    for status in (PENDING, REJECTED):  # a clean day measured against an unapproved change
        behind = champion_decision(_version(3, DAYS[2], True), champion, None, waiting_on=review(DAYS[1], status))
        assert not behind.promoted and behind.held and f"review of {DAYS[1]}" in behind.reason
    # Approving an old day while a newer champion serves does not move the alias back.
    newer_champion = _version(4, DAYS[3], True)
    assert not champion_decision(_version(2, DAYS[1], True), newer_champion, review(DAYS[1], APPROVED)).promoted


def test_fit_sanity_wants_labelled_personas_and_two_personas():
    personas = pl.DataFrame({"persona_id": [1, 2], "label": ["tennis", "cooking"], "truthfulness": [1.0, 0.5]})
    assert fit_sanity(personas).passed  # held-out truthfulness is a measure, not a gate
    unsupported = fit_sanity(personas.with_columns(label=pl.Series(["tennis", "unlabelled"])))
    assert not unsupported.passed and "persona 2 is unlabelled" in unsupported.reasons[0]
    assert not fit_sanity(personas.head(1)).passed
