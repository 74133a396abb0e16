"""The production profile on a real PostgreSQL server: Dagster's runs and events and MLflow's runs land there,
the warehouse comes out the same as on the embedded default, and the daemon runs launched backfills."""

import json
import os
import sys
import time
import urllib.request
from datetime import date
from functools import partial
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from browser_support import graphql, serving
from dagster_project.deploy import ProfileError, active_profile
from dagster_project.deploy.local_postgres import ensure_postgres, running_postgres
from dagster_project.deploy.profile import (
    DAGSTER_DB_URL_ENV,
    MLFLOW_DB_URL_ENV,
    PROFILE_ENV,
    PROFILE_FILE,
    TEMPLATES,
)
from dagster_project.deploy.scale_demo import COMPARED_TABLES, PROFILE_VARIABLES, comparison_lines, run_both_profiles
from dagster_project.generator import generate
from dagster_project.operations.launching import WORKSPACE_FILE
from dagster_project.paths import dagster_home, mlflow_dir
from dagster_project.processes import free_port
from dagster_project.summary import persona_catalogue
from dagster_project.tracking.store import MlflowStore
from pipeline_helpers import ENV_KEYS, using_home

START, LAST = date(2026, 10, 1), date(2026, 10, 2)
# Two days of the easy world, large enough that every compared table has rows: at 800 events a day, too few
# people stand behind each planted persona for parents (`persona_parents` was empty) since a persona needs 5.
SAMPLE = {"days": 2, "people": 200, "events_per_day": 1600, "seed": 5, "start_date": START, "world": "easy"}


@pytest.fixture(autouse=True)
def no_profile_from_the_caller(monkeypatch):
    """Each test names its own profile: none leaks in from the shell that started pytest."""
    for variable in PROFILE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="module")
def postgres():
    reason = ensure_postgres()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("dagster_postgres", reason="the production profile needs the `scale` extra: "
                        "pip install -e '.[scale]'")
    with running_postgres() as server:
        yield server


def test_embedded_is_the_default_and_its_dagster_yaml_is_unchanged(tmp_path):
    with using_home(tmp_path / "home") as home:
        assert active_profile(home).name == "embedded"
        written = (dagster_home(home) / "dagster.yaml").read_text()
    assert written == (TEMPLATES / "dagster.embedded.yaml").read_text()
    assert "\nstorage:" not in written and "default_limit: 1" in written


def test_profile_comes_from_the_environment_or_the_home_file_and_bad_settings_fail_clearly(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / PROFILE_FILE).write_text('profile = "production"\n[production]\nmax_concurrent_runs = 3\n')
    with pytest.raises(ProfileError, match=DAGSTER_DB_URL_ENV), using_home(home):
        pass
    monkeypatch.setenv(DAGSTER_DB_URL_ENV, "postgresql://u@127.0.0.1:1/dagster")
    with pytest.raises(ProfileError, match="postgresql\\+psycopg2://"), using_home(home):
        pass
    monkeypatch.setenv(DAGSTER_DB_URL_ENV, "postgresql+psycopg2://u@127.0.0.1:1/dagster")
    with using_home(home):
        written = (dagster_home(home) / "dagster.yaml").read_text()
    assert "QueuedRunCoordinator" in written and "max_concurrent_runs: 3" in written
    assert f"env: {DAGSTER_DB_URL_ENV}" in written and "psycopg2" not in written  # no secret in the file

    monkeypatch.setenv(PROFILE_ENV, "embedded")  # the environment wins over the file
    with using_home(home):
        assert (dagster_home(home) / "dagster.yaml").read_text() == (TEMPLATES / "dagster.embedded.yaml").read_text()

    hand_written = "# my own instance\ntelemetry:\n  enabled: false\n"
    (dagster_home(home) / "dagster.yaml").write_text(hand_written)
    monkeypatch.setenv(PROFILE_ENV, "production")
    with using_home(home):
        assert (dagster_home(home) / "dagster.yaml").read_text() == hand_written  # an operator's file is theirs

    monkeypatch.setenv(PROFILE_ENV, "cluster")
    with pytest.raises(ProfileError, match="unknown profile 'cluster'"):
        active_profile(home)
    monkeypatch.delenv(PROFILE_ENV)
    (home / PROFILE_FILE).write_text('profile = "production"\n[production]\nmax_runs = 3\n')
    with pytest.raises(ProfileError, match="max_runs"):
        active_profile(home)
    (home / PROFILE_FILE).write_text('profile = "production"\n[production]\npool_limit = 0\n')
    with pytest.raises(ProfileError, match="pool_limit .* must be a whole number >= 1, got 0"):
        active_profile(home)


def test_the_sample_through_both_profiles_writes_identical_tables_and_keeps_dagster_and_mlflow_in_postgres(
        tmp_path, monkeypatch, postgres):
    """`personas scale-demo`'s comparison: one sample run with `personas run`'s code in an embedded home and in a
    production home, whose Dagster runs, events and MLflow fits then live in PostgreSQL only."""
    for key in ENV_KEYS:  # each home's activation sets them: restored after the test
        monkeypatch.setenv(key, os.environ.get(key, ""))
    embedded, production = run_both_profiles(
        tmp_path / "scale-demo", SAMPLE, postgres.create_database("dagster"), postgres.create_database("mlflow"))

    assert embedded.success and production.success
    assert "Persona catalogue as of 2026-10-02" in production.catalogue
    assert production.catalogue == embedded.catalogue
    assert set(production.checksums) == set(COMPARED_TABLES)
    assert all(rows for rows, _ in production.checksums.values())
    assert production.checksums == embedded.checksums, "\n".join(comparison_lines(embedded, production))

    runs = postgres.query("dagster", "select run_id, status from runs")
    assert runs and {status for _, status in runs} == {"SUCCESS"}
    materialised = postgres.query("dagster", "select count(*) from event_logs "
                                  "where dagster_event_type = 'ASSET_MATERIALIZATION'")[0][0]
    assert materialised >= 2 * len(COMPARED_TABLES)
    assert not list(dagster_home(production.home).glob("**/*.db")), "the production instance wrote SQLite files"
    assert list(dagster_home(embedded.home).glob("**/*.db")), "the embedded instance wrote no SQLite file"

    fits = dict(postgres.query("mlflow", "select r.status, count(*) from runs r join experiments e "
                               "on e.experiment_id = r.experiment_id where e.name = 'personas' group by 1"))
    assert fits.get("FINISHED", 0) >= 2 and set(fits) == {"FINISHED"}
    assert postgres.query("mlflow", "select count(*) from model_versions")[0][0] >= 2
    assert not (mlflow_dir(production.home) / "mlflow.db").exists()
    artifacts = production.home / "mlflow-artifacts"
    assert any(path.is_file() for path in artifacts.rglob("*")), "no MLflow artifact under the configured root"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory, postgres):
    """(home, profile environment, the backfill's runs) of `personas backfill --wait` over two days of a production
    home: the daemon's backfill loop submits the runs, the QueuedRunCoordinator (with the profile's run limit)
    queues them in PostgreSQL and the daemon launches them."""
    from dagster import RunsFilter

    from dagster_project.cli import main

    environment = {DAGSTER_DB_URL_ENV: postgres.create_database("dagster_daemon"),
                   MLFLOW_DB_URL_ENV: postgres.create_database("mlflow_daemon")}
    root = tmp_path_factory.mktemp("backfilled")
    home = root / "home"
    home.mkdir()
    (home / PROFILE_FILE).write_text(f'profile = "production"\n[production]\nmax_concurrent_runs = 3\n'
                                     f'artifact_root = "{root / "artifacts"}"\n')
    with pytest.MonkeyPatch.context() as patch:
        for variable in PROFILE_VARIABLES:
            patch.delenv(variable, raising=False)
        for key, value in environment.items():
            patch.setenv(key, value)
        with using_home(home):
            generate(home, **SAMPLE)
            assert main(["backfill", "--start", str(START), "--end", str(LAST), "--wait"]) == 0
            with DagsterInstance.get() as instance:
                [backfill] = instance.get_backfills()
                runs = instance.get_runs(RunsFilter.for_backfill(backfill.backfill_id))
    return home, environment, runs


def test_a_backfill_on_the_production_profile_is_queued_in_postgres_and_run_by_the_daemon(
        backfilled, monkeypatch, postgres):
    """The backfill of `backfilled`: each run enqueued in PostgreSQL and then launched by the daemon, the `duckdb`
    pool holds one slot, and every day gets its personas."""
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.storage.dagster_run import DagsterRunStatus

    from dagster_project.resources.duckdb import DUCKDB_POOL

    home, environment, runs = backfilled
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    with using_home(home):
        with DagsterInstance.get() as instance:
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 3  # what the daemon reads
            [backfill] = instance.get_backfills()
            assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
            assert runs and {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
            assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).slot_count == 1
            for key in ("fct_events", "personas", "champion_model"):
                assert {START.isoformat(), LAST.isoformat()} <= instance.get_materialized_partitions(AssetKey(key)), key
        catalogue = persona_catalogue(home)

    run_ids = ", ".join(f"'{run.run_id}'" for run in runs)
    queue_events = dict(postgres.query("dagster_daemon", "select dagster_event_type, count(distinct run_id) from "
                                       f"event_logs where run_id in ({run_ids}) group by 1"))
    # Enqueued by the QueuedRunCoordinator, then launched (STARTING) by the daemon, the one that dequeues.
    assert queue_events.get("PIPELINE_ENQUEUED") == queue_events.get("PIPELINE_STARTING") == len(runs), queue_events
    assert postgres.query("dagster_daemon", "select count(*) from bulk_actions")[0][0] == 1
    assert "Persona catalogue as of 2026-10-02" in catalogue
    assert not list(dagster_home(home).glob("**/*.db")), "the production instance wrote SQLite files"


def test_the_persona_api_and_the_dagster_ui_serve_a_production_home_from_postgres(backfilled, monkeypatch, postgres):
    """`personas serve` and `dagster-webserver` started as an operator starts them over the home of `backfilled`:
    the API serves the champion that MLflow's PostgreSQL registry names and follows the alias when an operator
    moves it (there is no SQLite file to watch: the champion's version is the signal), and the UI's GraphQL lists
    the backfill and its runs from PostgreSQL."""
    home, environment, runs = backfilled
    # The caller's environment without any profile or MLflow setting: the servers get the two URLs and the home.
    env = {**{key: value for key, value in os.environ.items()
              if key not in PROFILE_VARIABLES and not key.startswith("MLFLOW_")}, **environment,
           "PERSONAS_HOME": str(home), "DAGSTER_HOME": str(dagster_home(home))}
    [(champion,)] = postgres.query("mlflow_daemon", "select version from registered_model_aliases "
                                                    "where alias = 'champion'")
    versions = [version for (version,) in postgres.query("mlflow_daemon", "select version from model_versions "
                                                                          "order by version")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).with_name("personas")), "serve", "--port", str(port), "--poll-seconds", "1"]
    with serving(command, home / "serve.log", f"{url}/health", 90, env):
        health = _get_json(f"{url}/health")
        assert health["model_version"] == str(champion) and health["as_of"] == LAST.isoformat()
        catalogue = _get_json(f"{url}/personas")
        assert catalogue and all(persona["label"] for persona in catalogue["personas"])

        # An operator rolls the champion back to the first day's version in MLflow's registry (and forward after).
        assert len(versions) >= 2, versions
        earlier = min(version for version in versions if version != champion)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        with using_home(home):
            tracking = MlflowStore()
            move_champion = partial(tracking.client().set_registered_model_alias, tracking.registered_model_name,
                                    "champion")
            move_champion(str(earlier))
            try:
                deadline = time.monotonic() + 60
                while (health := _get_json(f"{url}/health"))["model_version"] != str(earlier):
                    assert time.monotonic() < deadline, f"the API still serves version {health['model_version']}"
                    time.sleep(0.5)
                assert health["as_of"] == START.isoformat()
            finally:
                move_champion(str(champion))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(WORKSPACE_FILE),
               "-h", "127.0.0.1", "-p", str(port)]
    with serving(command, home / "webserver.log", f"{url}/server_info", 90, env, cwd=WORKSPACE_FILE.parent):
        listed = graphql(url, "{ runsOrError { ... on Runs { results { runId status } } } }")
        assert {(run["runId"], run["status"]) for run in listed["runsOrError"]["results"]} == \
            {(run.run_id, "SUCCESS") for run in runs}
        backfills = graphql(url, "{ partitionBackfillsOrError { ... on PartitionBackfills { results { status "
                                  "numPartitions } } } }")["partitionBackfillsOrError"]["results"]
        assert backfills == [{"status": "COMPLETED_SUCCESS", "numPartitions": 2}]
    assert not list(dagster_home(home).glob("**/*.db")), "a server wrote Dagster SQLite files"
    assert not (mlflow_dir(home) / "mlflow.db").exists(), "a server wrote an MLflow SQLite file"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def test_a_daemon_run_killed_in_its_persona_step_frees_its_slot_and_its_days_rerun_to_the_same_tables(
        tmp_path, monkeypatch, postgres):
    """A killed worker on the production profile: SIGKILL the process executing a daemon-launched backfill run
    while its persona step logs a fit. Dagster's code server fails the run but leaves its `duckdb` slot claimed,
    which would hold every later run; the daemon's `crashed_run_sensor` frees it and ends the orphaned MLflow
    run, the backfill ends, and a new backfill of the same days writes the tables an uninterrupted embedded run
    writes."""
    import shutil
    import signal
    import time

    from dagster import DagsterEventType, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.storage.dagster_run import DagsterRunStatus

    from dagster_project.cli import main
    from dagster_project.definitions import defs
    from dagster_project.deploy.scale_demo import table_checksums
    from dagster_project.operations.launching import IN_PROCESS, backfill_state, daemon_for, launch_asset_backfill
    from dagster_project.paths import warehouse_path
    from dagster_project.resources.duckdb import DUCKDB_POOL

    monkeypatch.setenv(DAGSTER_DB_URL_ENV, postgres.create_database("dagster_killed"))
    monkeypatch.setenv(MLFLOW_DB_URL_ENV, postgres.create_database("mlflow_killed"))
    home, embedded = tmp_path / "home", tmp_path / "embedded"
    generate(embedded, **SAMPLE)
    shutil.copytree(embedded, home)
    (home / PROFILE_FILE).write_text(f'profile = "production"\n[production]\nartifact_root = "{tmp_path / "artifacts"}"\n')
    asset_graph = defs.resolve_asset_graph()
    with using_home(home):
        with DagsterInstance.get() as instance, daemon_for(home, tmp_path / "daemon.log"):
            backfill_id = launch_asset_backfill(instance, asset_graph, sorted(asset_graph.materializable_asset_keys),
                                                START, LAST, run_config=IN_PROCESS)
            deadline = time.monotonic() + 300
            started = []
            while not started:  # the backfill's run once it has started its persona step
                assert time.monotonic() < deadline, "no run of the backfill reached persona_model"
                started = [(run, record) for run in instance.get_runs(RunsFilter.for_backfill(backfill_id))
                           if run.status == DagsterRunStatus.STARTED
                           for record in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
                           if record.step_key == "persona_model"]
                time.sleep(0.2)
            [(killed, step_start)] = started
            while not _running_mlflow_runs(postgres, "mlflow_killed"):  # each day's fit is open for a second or two
                assert time.monotonic() < deadline, "the persona step opened no MLflow run"
                time.sleep(0.02)
            os.kill(step_start.dagster_event.pid, signal.SIGKILL)  # the run worker: its steps run in its process
            slots = instance.event_log_storage.get_concurrency_info
            while not backfill_state(instance, asset_graph, backfill_id).finished or slots(DUCKDB_POOL).claimed_slots:
                assert time.monotonic() < deadline + 180, "the killed run holds its slot or its backfill never ended"
                time.sleep(1)  # the sensor ticks every 60 s
            assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
            engine_events = [record.message for record in
                             instance.all_logs(killed.run_id, of_type=DagsterEventType.ENGINE_EVENT)]
            assert any("terminated by signal 9" in message for message in engine_events), engine_events
            assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_FAILED
        assert main(["backfill", "--start", str(START), "--end", str(LAST), "--wait"]) == 0
        rerun = table_checksums(warehouse_path(home))
    with using_home(embedded):
        assert main(["run", "--start", str(START), "--end", str(LAST)]) == 0
        uninterrupted = table_checksums(warehouse_path(embedded))
    assert set(rerun) == set(COMPARED_TABLES) and all(rows for rows, _ in rerun.values())
    assert rerun == uninterrupted
    ended = dict(postgres.query("mlflow_killed", "select status, count(*) from runs group by 1"))
    assert ended.get("FAILED") == 1 and "RUNNING" not in ended, ended  # the killed fit, ended by recovery


def _running_mlflow_runs(postgres, database: str) -> int:
    try:
        return postgres.query(database, "select count(*) from runs where status = 'RUNNING'")[0][0]
    except Exception as error:  # MLflow has not created its tables yet
        if "does not exist" in str(error):
            return 0
        raise
