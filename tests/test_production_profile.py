"""The production profile on a real PostgreSQL server: Dagster's runs and events and MLflow's runs land there,
and the personas come out the same as on the embedded default."""

import shutil
from datetime import date

import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from dagster_project.deploy import ProfileError, active_profile
from dagster_project.deploy.profile import (
    ARTIFACT_ROOT_ENV,
    DAGSTER_DB_URL_ENV,
    MLFLOW_DB_URL_ENV,
    PROFILE_ENV,
    PROFILE_FILE,
    TEMPLATES,
)
from dagster_project.generator import generate
from dagster_project.paths import dagster_home, mlflow_dir, personas_home
from dagster_project.summary import persona_catalogue
from pipeline_helpers import WAREHOUSE_ASSETS, materialize_range, query, using_home
from postgres_server import ensure_postgres, running_postgres

START, LAST = date(2026, 10, 1), date(2026, 10, 2)
PROFILE_VARIABLES = (PROFILE_ENV, DAGSTER_DB_URL_ENV, MLFLOW_DB_URL_ENV, ARTIFACT_ROOT_ENV)
PERSONA_COLUMNS = "event_date, persona_id, label, share, n_memories, n_users, quality"
PERSONA_CHAIN = AssetSelection.assets("champion_model").upstream() - WAREHOUSE_ASSETS


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


def _fit_personas(instance=None):
    """The persona chain up to the champion over both days, in `instance` (None: an ephemeral one).

    Utility, fairness, KPIs and webhooks only read what this chain writes; leaving them out saves test time.
    """
    from dagster_project.definitions import defs

    result = materialize(defs.assets, selection=PERSONA_CHAIN, resources=defs.resources,
                         instance=instance, tags={"dagster/asset_partition_range_start": START.isoformat(),
                                                  "dagster/asset_partition_range_end": LAST.isoformat()})
    return result, persona_catalogue(personas_home()), query(f"select {PERSONA_COLUMNS} from personas order by all")


def test_a_production_run_keeps_dagster_and_mlflow_in_postgres_and_matches_the_embedded_personas(
        tmp_path, monkeypatch, postgres):
    """One warehouse build, copied to both homes: the homes differ only in where Dagster and MLflow keep state."""
    embedded, production = tmp_path / "embedded", tmp_path / "production"
    with using_home(embedded):
        generate(embedded, days=2, people=200, events_per_day=800, seed=5, start_date=START, world="easy")
        assert materialize_range(START, LAST, selection=WAREHOUSE_ASSETS).success
    shutil.copytree(embedded, production, ignore=shutil.ignore_patterns("dagster", "mlflow", "logs"))
    with using_home(embedded):
        _, embedded_catalogue, embedded_personas = _fit_personas()

    monkeypatch.setenv(DAGSTER_DB_URL_ENV, postgres.create_database("dagster"))
    monkeypatch.setenv(MLFLOW_DB_URL_ENV, postgres.create_database("mlflow"))
    shared_artifacts = tmp_path / "shared" / "mlflow-artifacts"
    (production / PROFILE_FILE).write_text(
        f'profile = "production"\n[production]\nartifact_root = "{shared_artifacts}"\n')
    with using_home(production), DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result, catalogue, personas = _fit_personas(instance)

    assert result.success and personas and "Persona catalogue as of 2026-10-02" in catalogue
    assert catalogue == embedded_catalogue and personas == embedded_personas
    assert postgres.query("dagster", f"select status from runs where run_id = '{result.run_id}'") == [("SUCCESS",)]
    materialised = postgres.query("dagster", "select count(*) from event_logs where run_id = "
                                  f"'{result.run_id}' and dagster_event_type = 'ASSET_MATERIALIZATION'")[0][0]
    assert materialised == len(result.get_asset_materialization_events())
    assert not list(dagster_home(production).glob("**/*.db")), "the production instance wrote SQLite files"

    fits = dict(postgres.query("mlflow", "select r.status, count(*) from runs r join experiments e "
                               "on e.experiment_id = r.experiment_id where e.name = 'personas' group by 1"))
    assert fits.get("FINISHED", 0) >= 2 and set(fits) == {"FINISHED"}
    assert postgres.query("mlflow", "select count(*) from model_versions")[0][0] >= 2
    assert not (mlflow_dir(production) / "mlflow.db").exists()
    assert any(path.is_file() for path in shared_artifacts.rglob("*")), "no MLflow artifact under the shared root"


def test_a_backfill_on_the_production_profile_is_queued_in_postgres_and_run_by_the_daemon(
        tmp_path, monkeypatch, postgres):
    """`personas backfill --wait` on a production home: the daemon's backfill loop submits the runs, the
    QueuedRunCoordinator (with the profile's run limit) queues them in PostgreSQL, the daemon launches them,
    the `duckdb` pool holds one slot, and every day gets its personas."""
    from dagster import RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.storage.dagster_run import DagsterRunStatus

    from dagster_project.resources.duckdb import DUCKDB_POOL
    from dagster_project.cli import main

    monkeypatch.setenv(DAGSTER_DB_URL_ENV, postgres.create_database("dagster_daemon"))
    monkeypatch.setenv(MLFLOW_DB_URL_ENV, postgres.create_database("mlflow_daemon"))
    home = tmp_path / "home"
    home.mkdir()
    (home / PROFILE_FILE).write_text(f'profile = "production"\n[production]\nmax_concurrent_runs = 3\n'
                                     f'artifact_root = "{tmp_path / "artifacts"}"\n')
    with using_home(home):
        generate(home, days=2, people=200, events_per_day=800, seed=5, start_date=START, world="easy")
        assert main(["backfill", "--start", str(START), "--end", str(LAST), "--wait"]) == 0
        with DagsterInstance.get() as instance:
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 3  # what the daemon reads
            [backfill] = instance.get_backfills()
            assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
            runs = instance.get_runs(RunsFilter.for_backfill(backfill.backfill_id))
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
