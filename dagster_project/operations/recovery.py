"""Recovery after a crash, and runs that wait in the open.

A run killed with SIGKILL (OOM, reboot, kill -9) cannot say it died: Dagster keeps it
STARTED with its `duckdb` pool slot claimed, MLflow keeps the fit's run RUNNING, and every
later run waits for the slot forever. So every run the CLI launches carries its process
(`personas/pid`, `personas/host`, `personas/boot_id`, `personas/process_start`, the PID
namespace and, when the CLI leads its process group as a shell starts it, `personas/pgid`);
a STARTED run whose process is gone (another boot, no such pid, or a pid reused by a newer
process) is dead. A led group is alive while any member runs: the OOM killer may kill the
CLI alone and leave its dbt subprocess writing the warehouse. Another PID namespace on the
same host cannot be told. `recover_crashed_runs` marks a dead run failed, frees its pool
slots and ends as FAILED the MLflow runs tagged with its id left RUNNING (see
`tracking.fit_runs.DAGSTER_RUN_TAG`; a fit of a live run launched elsewhere is left alone).
The CLI calls it before every run and while it waits for the pool, the daemon through
`crashed_run_sensor`; both also free the slots that runs which have ended still hold
(`free_slots_of_ended_runs`) and end the MLflow runs such runs left RUNNING
(`end_fits_of_ended_runs`: Dagster's code server fails a daemon-launched run whose process
was killed, but frees no slot and ends no MLflow run).

`personas run` and `backfill` hold the home's run lock (an OS file lock, released by the
kernel when its process dies, even by SIGKILL) for the whole run: a second run of the same
home waits for it in its own loop, which says what it waits on and stops on Ctrl-C, instead
of inside Dagster's executor, which polls the pool without a word and ignores interrupts.
"""

import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from dagster_project.paths import dagster_home, mlflow_dir
from dagster_project.resources.duckdb import DUCKDB_POOL

PID_TAG = "personas/pid"
HOST_TAG = "personas/host"
BOOT_TAG = "personas/boot_id"
PROCESS_START_TAG = "personas/process_start"
PGID_TAG = "personas/pgid"
PID_NAMESPACE_TAG = "personas/pid_namespace"
RUN_LOCK_FILE = "personas-run.lock"
UNFINISHED = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
WAIT_REPORT_SECONDS = 10.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' where /proc is absent."""
    try:
        # The command name (field 2) may hold spaces: the fields after its closing parenthesis.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _group_is_alive(pgid: int) -> bool:
    """Some member of the process group still runs (zombies, dead but not yet reaped, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # members exist, owned by someone else
    stats = list(Path("/proc").glob("[0-9]*/stat"))
    if not stats:
        return True  # no /proc: the kill above is all there is to tell
    for stat in stats:
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # the process ended while we read
        if int(group) == pgid and state != "Z":
            return True
    return False


def launch_tags() -> dict[str, str]:
    """Who runs this run: the tags `process_is_gone` reads back."""
    pid = os.getpid()
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), BOOT_TAG: _boot_id(),
            PROCESS_START_TAG: _process_start(pid), PID_NAMESPACE_TAG: _pid_namespace()}
    if os.getpgid(0) == pid:  # a group of its own (a shell's job): its children are ours
        tags[PGID_TAG] = str(pid)
    return tags


def process_is_gone(tags: dict[str, str]) -> bool | None:
    """True when the tagged process (and its group) no longer runs; None when it cannot be told
    (another host or PID namespace, no tags)."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    if tags.get(PID_NAMESPACE_TAG) and _pid_namespace() and tags[PID_NAMESPACE_TAG] != _pid_namespace():
        return None  # a pid of another container means nothing here
    if tags.get(BOOT_TAG) and _boot_id() and tags[BOOT_TAG] != _boot_id():
        return True  # the machine rebooted since
    if tags.get(PGID_TAG):
        return not _group_is_alive(int(tags[PGID_TAG]))
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    started = tags.get(PROCESS_START_TAG)
    return bool(started) and _process_start(pid) not in ("", started)  # the pid now names a newer process


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    pid: str
    mlflow_runs_ended: int


def _running_fits(home: Path, dagster_run_id: str | None = None) -> tuple[object, list]:
    """(MLflow client, the persona experiment's RUNNING runs, of one Dagster run if given); no runs when the
    embedded store was never created (a PostgreSQL store is always asked)."""
    from dagster_project.tracking.store import EXPERIMENT_NAME, store_uri

    if store_uri(home).startswith("sqlite:") and not (mlflow_dir(home) / "mlflow.db").exists():
        return None, []
    from mlflow import MlflowClient

    from dagster_project.tracking.fit_runs import DAGSTER_RUN_TAG

    client = MlflowClient(store_uri(home), store_uri(home))
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return client, []
    of_run = f" and tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'" if dagster_run_id else ""
    return client, client.search_runs([experiment.experiment_id], filter_string=f"attributes.status = 'RUNNING'{of_run}")


def _end_orphaned_mlflow_runs(home: Path, dagster_run_id: str) -> int:
    """End as FAILED the MLflow runs a dead Dagster run left RUNNING."""
    client, orphans = _running_fits(home, dagster_run_id)
    for run in orphans:
        client.set_terminated(run.info.run_id, status="FAILED")
    return len(orphans)


def end_fits_of_ended_runs(instance: DagsterInstance, home: Path) -> dict[str, int]:
    """End as FAILED the MLflow runs still RUNNING whose Dagster run has ended (or is gone); {Dagster run id:
    MLflow runs ended}.

    Dagster's code server fails a daemon-launched run whose process was killed ("terminated by signal 9"),
    so it is no crash for `recover_crashed_runs`, but the fit it was logging stays RUNNING in MLflow. Asked
    apart from the pool slots, so that an unreachable MLflow store leaves the slots freed and is asked again
    on the next call.
    """
    from dagster_project.tracking.fit_runs import DAGSTER_RUN_TAG

    client, running = _running_fits(home)
    ended: dict[str, int] = {}
    for fit in running:
        dagster_run_id = fit.data.tags.get(DAGSTER_RUN_TAG)
        if not dagster_run_id:
            continue
        run = instance.get_run_by_id(dagster_run_id)
        if run is None or run.is_finished:
            client.set_terminated(fit.info.run_id, status="FAILED")
            ended[dagster_run_id] = ended.get(dagster_run_id, 0) + 1
    return ended


def recover_crashed_runs(instance: DagsterInstance, home: Path) -> list[RecoveredRun]:
    """Fail every unfinished run whose process is gone, free its pool slots and end its MLflow runs."""
    recovered = []
    for record in instance.get_run_records(RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if not process_is_gone(run.tags):
            continue
        instance.report_run_failed(
            run, message=f"Process {run.tags[PID_TAG]} on {run.tags[HOST_TAG]} is gone (killed or crashed); "
            "marked failed and its pool slots freed by the next personas run."
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(RecoveredRun(run.run_id, run.tags[PID_TAG], _end_orphaned_mlflow_runs(home, run.run_id)))
    return recovered


def free_slots_of_ended_runs(instance: DagsterInstance) -> list[tuple[str, str]]:
    """Free the pool slots still claimed by runs that have ended (or are gone); (run id, status) of each.

    A run that ends frees its slots itself, but one stopped in the middle of a step (a signal while the
    step hangs, seen here after SIGTERM) can end FAILURE with its slot still claimed. It is no crash for
    `recover_crashed_runs` to find, yet every later run would wait for that slot forever.
    """
    storage = instance.event_log_storage
    freed = []
    for pool in storage.get_concurrency_keys():
        for run_id in dict.fromkeys(slot.run_id for slot in storage.get_concurrency_info(pool).claimed_slots):
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                freed.append((run_id, run.status.value if run else "deleted"))
    return freed


def _holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def home_run_lock(home: Path, describe: str, report: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the home's run lock for the block, saying every few seconds who holds it while waiting.

    Waiting is a sleep in this process, so Ctrl-C (KeyboardInterrupt) and SIGTERM stop it at once.
    """
    report = report or (lambda message: print(message, file=sys.stderr, flush=True))
    lock_path = dagster_home(home) / RUN_LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        started = time.monotonic()
        next_report = started
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= next_report:
                    report(f"waiting for {_holder(lock_path)} to finish (run lock {lock_path}) "
                           f"for {time.monotonic() - started:.0f}s; Ctrl-C stops waiting")
                    next_report += WAIT_REPORT_SECONDS
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({describe}, since {datetime.now(UTC):%H:%M:%S} UTC)\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_for_pool(instance: DagsterInstance, report: Callable[[str], None] | None = None,
                  pool: str = DUCKDB_POOL, timeout_seconds: float | None = None,
                  recover: Callable[[], object] | None = None) -> None:
    """Wait, in the open, while live runs outside this process (the daemon's, the UI's) fill `pool`.

    `recover` is called before every look at the pool: a holder that dies while we wait
    (a killed CLI's dbt finishing) is then recovered and its slot freed.
    Raises TimeoutError after `timeout_seconds` (None: wait until Ctrl-C).
    """
    report = report or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.monotonic()
    next_report = started
    while True:
        if recover is not None:
            recover()
        info = instance.event_log_storage.get_concurrency_info(pool)
        limit = info.limit if info.limit is not None else info.slot_count
        if not limit or info.active_slot_count < limit:
            return
        waited = time.monotonic() - started
        if timeout_seconds is not None and waited > timeout_seconds:
            raise TimeoutError(f"pool {pool} still full after {waited:.0f}s")
        if time.monotonic() >= next_report:
            holders = ", ".join(f"run {slot.run_id[:8]} step {slot.step_key}" for slot in info.claimed_slots)
            report(f"waiting for pool {pool} ({info.active_slot_count}/{limit} slots held by {holders}) "
                   f"for {waited:.0f}s; Ctrl-C stops waiting")
            next_report += WAIT_REPORT_SECONDS
        time.sleep(1.0)
