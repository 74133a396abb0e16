"""Recovery after a crash: `personas run` killed with SIGKILL mid-dbt and mid-persona, then a plain rerun.

Each kill first reproduces the measured problem (the run stays STARTED, its `duckdb` pool
slot stays claimed, the MLflow fit stays RUNNING); the next plain `personas run` must then
recover and finish by itself. Real subprocesses, a real Dagster instance, dbt and MLflow.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from dagster_project.generator import generate
from dagster_project.operations.recovery import (
    PGID_TAG,
    PID_TAG,
    end_fits_of_ended_runs,
    free_slots_of_ended_runs,
    home_run_lock,
    launch_tags,
    process_is_gone,
    recover_crashed_runs,
    wait_for_pool,
)
from dagster_project.paths import mlflow_dir
from dagster_project.resources.duckdb import DUCKDB_POOL

START = date(2026, 10, 1)
LAST = START
PERSONAS = Path(sys.executable).with_name("personas")
RUN_TIMEOUT_SECONDS = 600


def start_run(home: Path, first: date, last: date) -> subprocess.Popen:
    env = {**os.environ, "PERSONAS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    return subprocess.Popen(
        [str(PERSONAS), "run", "--start", first.isoformat(), "--end", last.isoformat()],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
    )


def started_run(instance: DagsterInstance, pid: int):
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={PID_TAG: str(pid)}))
    return runs[0] if runs else None


def running_mlflow_runs(home: Path) -> int:
    database = mlflow_dir(home) / "mlflow.db"
    if not database.exists():
        return 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
        try:
            return connection.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
            return 0


def kill_when(process: subprocess.Popen, ready, timeout: float = RUN_TIMEOUT_SECONDS) -> None:
    """SIGKILL the run's whole process group (dbt included) once `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"the run ended before it could be killed:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "the run never reached the step"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def in_step(instance: DagsterInstance, pid: int, step_prefix: str):
    def ready() -> bool:
        run = started_run(instance, pid)
        if run is None:
            return False
        starts = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
        return any(record.step_key.startswith(step_prefix) for record in starts)

    return ready


def assert_left_hanging(instance: DagsterInstance, pid: int) -> str:
    """The problem as measured: the dead run is STARTED and still holds its pool slot."""
    run = started_run(instance, pid)
    assert run is not None
    claimed = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots
    assert [slot.run_id for slot in claimed] == [run.run_id]
    return run.run_id


def test_a_run_killed_mid_dbt_and_mid_persona_is_recovered_by_the_next_plain_run(home):
    generate(home, days=1, people=120, events_per_day=400, seed=5, start_date=START, world="easy")
    with DagsterInstance.get() as instance:
        killed_in_dbt = start_run(home, START, LAST)
        kill_when(killed_in_dbt, in_step(instance, killed_in_dbt.pid, "dbt_warehouse"))
        dead_in_dbt = assert_left_hanging(instance, killed_in_dbt.pid)

        # The next run recovers the first at its start, then is itself killed while MLflow logs a fit.
        killed_in_persona = start_run(home, START, LAST)
        kill_when(killed_in_persona, lambda: running_mlflow_runs(home) > 0)
        dead_in_persona = assert_left_hanging(instance, killed_in_persona.pid)
        assert running_mlflow_runs(home) == 1
        assert instance.get_run_by_id(dead_in_dbt).status == DagsterRunStatus.FAILURE

        plain = start_run(home, START, LAST)
        output, _ = plain.communicate(timeout=RUN_TIMEOUT_SECONDS)
        assert plain.returncode == 0, output
        assert f"Recovered run {dead_in_persona}" in output
        assert "1 MLflow run(s) ended as FAILED" in output
        assert instance.get_run_by_id(dead_in_persona).status == DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []
        assert running_mlflow_runs(home) == 0
        assert f"Run {START}..{LAST} succeeded" in output


def tags_of(process: subprocess.Popen) -> dict[str, str]:
    """The launch tags a process started in a session of its own (as a shell starts `personas run`) would carry."""
    return {**launch_tags(), PID_TAG: str(process.pid), PGID_TAG: str(process.pid), "personas/process_start": ""}


def exited_process() -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait()
    return child


def test_a_tagged_run_is_gone_once_its_process_exits_and_alive_while_it_runs():
    assert process_is_gone(launch_tags()) is False
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    tags = tags_of(child)
    assert process_is_gone(tags) is False
    without_group = {key: value for key, value in tags.items() if key != PGID_TAG}
    assert process_is_gone(without_group) is False  # no start time to compare: liveness alone decides
    child.kill()
    child.wait()
    assert process_is_gone(tags) is True and process_is_gone(without_group) is True
    reused = {key: value for key, value in launch_tags().items() if key != PGID_TAG}
    assert process_is_gone({**reused, "personas/process_start": "1"}) is True  # the pid names a newer process
    assert process_is_gone({**launch_tags(), "personas/host": "elsewhere"}) is None
    assert process_is_gone({**tags, "personas/pid_namespace": "pid:[1]"}) is None  # another container's pid
    assert process_is_gone({}) is None


def test_a_run_whose_process_alone_was_killed_lives_while_its_subprocess_runs(home):
    """The OOM killer may pick the CLI and leave its dbt writing: the run is not dead before dbt ends."""
    cli = subprocess.Popen(
        [sys.executable, "-c", (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(child.pid, flush=True); time.sleep(60)"
        )],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    dbt_pid = int(cli.stdout.readline())
    tags = tags_of(cli)
    with DagsterInstance.get() as instance:
        from dagster._core.test_utils import create_run_for_test

        run = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED, tags=tags)
        instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        assert instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, run.run_id, "dbt_warehouse").is_claimed
        cli.kill()
        cli.wait()
        try:
            assert process_is_gone(tags) is False
            assert recover_crashed_runs(instance, home) == []
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        finally:
            os.kill(dbt_pid, signal.SIGKILL)
        # A run waiting for the pool recovers it as soon as its last process is gone.
        wait_for_pool(instance, lambda message: None, timeout_seconds=RUN_TIMEOUT_SECONDS,
                      recover=lambda: recover_crashed_runs(instance, home))
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []


def start_fit(home: Path, dagster_run_id: str | None) -> str:
    """An MLflow fit left RUNNING, tagged as `persona_model` tags it (None: a run without the tag)."""
    from mlflow import MlflowClient

    from dagster_project.tracking.fit_runs import DAGSTER_RUN_TAG
    from dagster_project.tracking.store import EXPERIMENT_NAME, store_uri

    client = MlflowClient(store_uri(home), store_uri(home))
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT_NAME)
    tags = {DAGSTER_RUN_TAG: dagster_run_id} if dagster_run_id else {}
    return client.create_run(experiment_id, tags=tags).info.run_id


def fit_status(home: Path, mlflow_run_id: str) -> str:
    from mlflow import MlflowClient

    from dagster_project.tracking.store import store_uri

    return MlflowClient(store_uri(home), store_uri(home)).get_run(mlflow_run_id).info.status


def test_a_dead_run_is_failed_and_its_slot_freed_and_a_live_one_left_alone(home):
    with DagsterInstance.get() as instance:
        from dagster._core.test_utils import create_run_for_test

        dead = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED,
                                   tags=tags_of(exited_process()))
        alive = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED,
                                    tags=launch_tags())
        # Started after the dead run: its own fit, a live run's fit, and one of a run the UI launched.
        dead_fit, alive_fit = start_fit(home, dead.run_id), start_fit(home, alive.run_id)
        untagged_fit = start_fit(home, None)
        instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        claim = instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, dead.run_id, "dbt_warehouse")
        assert claim.is_claimed

        messages = []
        waiter = threading.Thread(target=wait_for_pool, args=(instance, messages.append), kwargs={"timeout_seconds": 1})
        with pytest.raises(TimeoutError):
            wait_for_pool(instance, messages.append, timeout_seconds=1)
        assert f"waiting for pool {DUCKDB_POOL}" in messages[0] and dead.run_id[:8] in messages[0]

        recovered = recover_crashed_runs(instance, home)
        assert [(run.run_id, run.mlflow_runs_ended) for run in recovered] == [(dead.run_id, 1)]
        assert [fit_status(home, fit) for fit in (dead_fit, alive_fit, untagged_fit)] == ["FAILED", "RUNNING", "RUNNING"]
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []
        waiter.start()
        waiter.join(timeout=5)
        assert not waiter.is_alive()  # the pool is free: no wait at all


def test_a_second_run_waits_for_the_run_lock_says_so_and_stops_on_ctrl_c(home, monkeypatch, request):
    monkeypatch.setattr("dagster_project.operations.recovery.WAIT_REPORT_SECONDS", 0.2)
    # Python's own Ctrl-C behaviour, whatever handler an earlier in-process run left installed.
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous_handler))
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from dagster_project.operations.recovery import home_run_lock\n"
            f"with home_run_lock(Path({str(home)!r}), 'a test run'):\n"
            "    print('held', flush=True); time.sleep(60)"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        messages = []

        def interrupt(message: str) -> None:
            messages.append(message)
            if len(messages) == 2:
                os.kill(os.getpid(), signal.SIGINT)

        with pytest.raises(KeyboardInterrupt):
            with home_run_lock(home, "the waiting run", report=interrupt):
                pytest.fail("the lock was taken while another process held it")
        assert f"pid {holder.pid} (a test run" in messages[0] and "Ctrl-C stops waiting" in messages[0]
    finally:
        holder.kill()
        holder.wait()
    with home_run_lock(home, "after the holder died", report=messages.append):  # SIGKILL released the lock
        pass


def test_slots_an_ended_run_still_holds_are_freed_and_a_live_runs_kept(home):
    """Measured: a `personas run` stopped by SIGTERM while its persona step hung ended FAILURE with its
    `duckdb` slot still claimed, and the next run waited for it without end."""
    from dagster._core.test_utils import create_run_for_test

    with DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(DUCKDB_POOL, 2)
        ended = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.FAILURE,
                                    tags=launch_tags())
        live = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED,
                                   tags=launch_tags())
        for run in (ended, live):
            assert storage.claim_concurrency_slot(DUCKDB_POOL, run.run_id, "persona_model").is_claimed
        with pytest.raises(TimeoutError):  # the ended run is no crash: recovery alone leaves its slot
            wait_for_pool(instance, lambda _message: None, timeout_seconds=1,
                          recover=lambda: recover_crashed_runs(instance, home))

        assert free_slots_of_ended_runs(instance) == [(ended.run_id, "FAILURE")]
        assert [slot.run_id for slot in storage.get_concurrency_info(DUCKDB_POOL).claimed_slots] == [live.run_id]
        assert free_slots_of_ended_runs(instance) == []
        wait_for_pool(instance, lambda _message: None, timeout_seconds=1)  # one of two slots is free


def test_fits_an_ended_run_left_running_are_ended_and_a_live_runs_kept(home):
    """Measured on the production profile: a daemon-launched run killed while it logs a fit is failed by Dagster's
    code server, which ends no MLflow run; the fit stayed RUNNING for good."""
    from dagster._core.test_utils import create_run_for_test
    from mlflow import MlflowClient

    from dagster_project.tracking.fit_runs import DAGSTER_RUN_TAG
    from dagster_project.tracking.store import MlflowStore, store_uri

    with DagsterInstance.get() as instance:
        assert end_fits_of_ended_runs(instance, home) == {}  # no store yet: nothing to ask
        ended = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.FAILURE)
        live = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED)
        experiment_id = MlflowStore().activate()
        client = MlflowClient(store_uri(home), store_uri(home))
        fits = {run.run_id: client.create_run(experiment_id, tags={DAGSTER_RUN_TAG: run.run_id}).info.run_id
                for run in (ended, live)}

        assert end_fits_of_ended_runs(instance, home) == {ended.run_id: 1}
        assert client.get_run(fits[ended.run_id]).info.status == "FAILED"
        assert client.get_run(fits[live.run_id]).info.status == "RUNNING"
        assert end_fits_of_ended_runs(instance, home) == {}
