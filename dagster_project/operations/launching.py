"""Runs and backfills that the Dagster UI counts as the code location's own.

A run made by `execute_in_process` has no code-location origin and an ephemeral job (its own
executor and loggers), so the UI lists it under no job, leaves it off the Overview timeline and
warns on re-execute that the code may differ. `execute_location_run` creates the run as
`dagster job launch` does, with the remote origin of the `personas` location of `workspace.yaml`
(the `.dagster/repository` tag the job's Runs tab filters on) and the job's own snapshot, then
executes it here, with the in-process executor chosen by run config: no gRPC server, no process
per step, and the command's progress display fed by the instance's event stream.

`launch_asset_backfill` adds a real asset backfill, the one the UI's "Launch backfill" makes: the
daemon executes it (each asset's `BackfillPolicy` decides the runs), the Backfills tab lists it and
its failed partitions can be re-executed from there.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from dagster import AssetKey, DagsterInstance, RunsFilter
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.selector import PartitionRangeSelector, PartitionsByAssetSelector, PartitionsSelector
from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus, PartitionBackfill
from dagster._core.execution.job_execution_result import JobExecutionResult
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.utils import make_new_backfill_id, make_new_run_id
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._time import get_current_timestamp

from dagster_project.processes import stop_process

WORKSPACE_FILE = Path(__file__).resolve().parents[2] / "workspace.yaml"
DEFINITIONS_MODULE = "dagster_project.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
REPOSITORY_NAME = "__repository__"  # the one repository of a `Definitions` object
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
DAEMON_HEARTBEAT_SECONDS = 90.0  # a daemon beats every 30 s: three missed beats and it is gone


@cache
def location_origin():
    """The code location as `workspace.yaml` declares it, read without loading it."""
    [origin] = location_origins_from_yaml_paths([str(WORKSPACE_FILE)])
    return origin


def remote_job_origin(job_name: str) -> RemoteJobOrigin:
    return RemoteJobOrigin(RemoteRepositoryOrigin(location_origin(), REPOSITORY_NAME), job_name)


def repository_label() -> str:
    """The `.dagster/repository` tag value the UI filters a job's runs on."""
    return f"{REPOSITORY_NAME}@{location_origin().location_name}"


def reconstructable_job(job_name: str):
    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE,
                                                      working_directory=str(WORKSPACE_FILE.parent))
    return repository.get_reconstructable_job(job_name)


def execute_location_run(instance: DagsterInstance, job_def, tags: Mapping[str, str], run_config: Mapping | None = None,
                         asset_selection: Sequence[AssetKey] | None = None,
                         on_event: Callable[[object], None] | None = None) -> JobExecutionResult:
    """Create a run of `job_def` carrying the code location's origin and execute it in this process.

    `on_event` gets every event log entry of the run as the instance stores it.
    """
    recon_job = reconstructable_job(job_def.name)
    run_id = make_new_run_id()
    if on_event is not None:
        instance.add_event_listener(run_id, on_event)
    run = instance.create_run_for_job(
        job_def=job_def, run_id=run_id, run_config={**(run_config or {}), **IN_PROCESS}, tags=dict(tags),
        asset_selection=set(asset_selection) if asset_selection else None,
        remote_job_origin=remote_job_origin(job_def.name), job_code_origin=recon_job.get_python_origin(),
    )
    return execute_run(recon_job, run, instance, raise_on_error=False)


def launch_asset_backfill(instance: DagsterInstance, asset_graph, asset_keys: Sequence[AssetKey], first: date,
                          last: date, tags: Mapping[str, str] | None = None, run_config: Mapping | None = None) -> str:
    """Add an asset backfill of `asset_keys` over exactly [first, last] for the daemon to execute; its id.

    Exactly those days for every asset (the UI's per-asset partition selection): launched from a
    range of days, Dagster would also target every persona fit whose 28-day window holds one of
    them, weeks past the last data day.
    """
    days = PartitionsSelector(ranges=[PartitionRangeSelector(first.isoformat(), last.isoformat())])
    backfill = PartitionBackfill.from_partitions_by_assets(
        backfill_id=make_new_backfill_id(), asset_graph=asset_graph, backfill_timestamp=get_current_timestamp(),
        tags=dict(tags or {}), dynamic_partitions_store=instance,
        partitions_by_assets=[PartitionsByAssetSelector(asset_key=key, partitions=days) for key in asset_keys],
        title=f"personas {first}..{last}",
        description=f"Every asset of the persona platform for {first}..{last}, launched by `personas backfill`.",
        run_config=run_config,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


@dataclass(frozen=True)
class BackfillState:
    """Where a backfill stands: its asset partitions done, failed and left, and its runs."""

    status: BulkActionStatus
    target: int
    materialized: int
    failed: int
    runs: int
    failed_days: dict[str, list[str]]

    @property
    def finished(self) -> bool:
        return self.status in BULK_ACTION_TERMINAL_STATUSES

    @property
    def left(self) -> int:
        return self.target - self.materialized - self.failed


def backfill_state(instance: DagsterInstance, asset_graph, backfill_id: str) -> BackfillState:
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise KeyError(f"no backfill {backfill_id} in {instance.root_directory}")
    data = backfill.get_asset_backfill_data(asset_graph)
    failed_days: dict[str, list[str]] = {}
    for asset_partition in data.failed_and_downstream_subset.iterate_asset_partitions():
        day = asset_partition.partition_key or ""
        failed_days.setdefault(day, []).append(asset_partition.asset_key.to_user_string())
    return BackfillState(
        status=backfill.status,
        target=data.target_subset.num_partitions_and_non_partitioned_assets,
        materialized=data.materialized_subset.num_partitions_and_non_partitioned_assets,
        failed=data.failed_and_downstream_subset.num_partitions_and_non_partitioned_assets,
        runs=instance.get_runs_count(RunsFilter.for_backfill(backfill_id)),
        failed_days={day: sorted(keys) for day, keys in sorted(failed_days.items())},
    )


def daemon_is_running(instance: DagsterInstance) -> bool:
    """A daemon of this instance sent a backfill heartbeat lately (`make ui` runs one, so does `dagster-daemon run`)."""
    heartbeat = instance.get_daemon_heartbeats().get("BACKFILL")
    return heartbeat is not None and get_current_timestamp() - heartbeat.timestamp < DAEMON_HEARTBEAT_SECONDS


@contextmanager
def daemon_for(home: Path, log_path: Path) -> Iterator[subprocess.Popen | None]:
    """A `dagster-daemon run` over the home and `workspace.yaml` for the block, unless one already runs."""
    from dagster_project.paths import dagster_home

    with DagsterInstance.get() as instance:
        if daemon_is_running(instance):
            yield None
            return
    env = {**os.environ, "PERSONAS_HOME": str(home), "DAGSTER_HOME": str(dagster_home(home))}
    executable = Path(sys.executable).with_name("dagster-daemon")
    with open(log_path, "ab") as log:
        daemon = subprocess.Popen([str(executable), "run", "-w", str(WORKSPACE_FILE)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=WORKSPACE_FILE.parent)
    try:
        yield daemon
    finally:
        stop_process(daemon, timeout=30)
        with DagsterInstance.get() as instance:  # its last beats would pass for a live daemon for a while
            instance.wipe_daemon_heartbeats()


def wait_for_backfill(instance: DagsterInstance, asset_graph, backfill_id: str, report: Callable[[BackfillState], None],
                      daemon: subprocess.Popen | None = None, poll_seconds: float = 2.0) -> BackfillState:
    """Poll the backfill until it is finished, reporting each change; raises if the daemon stops first
    (ours exits, or the one already running stops beating)."""
    shown = None
    while True:
        state = backfill_state(instance, asset_graph, backfill_id)
        if state != shown:
            report(state)
            shown = state
        if state.finished:
            return state
        if daemon is not None and daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with code {daemon.returncode} "
                               f"before backfill {backfill_id} finished")
        if daemon is None and not daemon_is_running(instance):
            raise RuntimeError(f"the daemon of this home stopped before backfill {backfill_id} finished: "
                               "run the command again with --wait, or start `make ui`")
        time.sleep(poll_seconds)
