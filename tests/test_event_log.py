"""Dagster's event log: no fsync for Dagster's SQLite files, full fsync for every other SQLite store; a batch of
per-day events, and a step's per-day check evaluations, in one transaction, with the same per-day truth in the UI."""

import pytest
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    asset_check,
    materialize,
)
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from dagster_project.bench.event_log_meter import EventLogMeter
from dagster_project.deploy.profile import TEMPLATES
from dagster_project.metadata import day_check_evaluations
from dagster_project.partitions import days_between, partition_dates
from dagster_project.resources.event_log import (
    BATCH_SIZE_SETTING,
    EVENT_BATCH_SIZE,
    SYNC_SETTING,
    BatchingSqliteEventLogStorage,
    lighten_event_log,
)

SQLITE_SYNC_LEVELS = {0: "off", 1: "normal", 2: "full"}


def synchronous_of(path) -> str:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.connect() as connection:
        level = connection.execute(text("pragma synchronous")).scalar()
    engine.dispose()
    return SQLITE_SYNC_LEVELS[level]


def test_only_databases_under_dagster_home_skip_fsync(tmp_path, monkeypatch):
    dagster_home = tmp_path / "home" / "dagster"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    lighten_event_log()
    lighten_event_log()  # idempotent: one listener
    assert synchronous_of(dagster_home / "runs.db") == "off"
    assert synchronous_of(tmp_path / "home" / "mlflow.db") == "full"
    monkeypatch.setenv(SYNC_SETTING, "full")
    assert synchronous_of(dagster_home / "index.db") == "full"
    monkeypatch.setenv(SYNC_SETTING, "sometimes")
    with pytest.raises(ValueError, match=SYNC_SETTING):
        synchronous_of(dagster_home / "index.db")


DAYS = DailyPartitionsDefinition(start_date="2026-01-01")
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(),
       check_specs=[AssetCheckSpec("has_rows", asset="upstream")])
def upstream(context: AssetExecutionContext) -> MaterializeResult:
    return MaterializeResult(metadata={"days": len(context.partition_keys)},
                             check_results=[AssetCheckResult(check_name="has_rows", passed=True)])


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), deps=[upstream])
def downstream(context: AssetExecutionContext) -> None:
    if context.run.tags.get("fail") == "yes":
        raise RuntimeError("downstream fails on purpose")


DAY_CHECK = AssetCheckKey(upstream.key, "each_day")


@asset_check(asset=upstream, name=DAY_CHECK.name, partitions_def=DAYS)
def each_day(context: AssetCheckExecutionContext):
    """One evaluation per day, as the gates record them; every third day warns. A reader right after the last one
    (before the step's next event) sees every day evaluated, none still planned."""
    first, last = partition_dates(context)
    days = days_between(first, last)
    yield from day_check_evaluations(context, DAY_CHECK, {
        day: (day.day % 3 != 0, AssetCheckSeverity.WARN, {"day": day.isoformat()}) for day in days
    }, blocking=False)
    history = context.instance.event_log_storage.get_asset_check_execution_history(DAY_CHECK, limit=100)
    statuses = {execution.partition: execution.status.value for execution in history
                if execution.run_id == context.run.run_id}
    assert statuses == {day.isoformat(): "SUCCEEDED" if day.day % 3 else "FAILED" for day in days}, statuses


def what_the_ui_shows(instance: DagsterInstance, run_names: dict[str, str]) -> dict:
    """Per asset: the days the UI shows materialised and failed, each day's latest run, the check's executions
    (runs by their names: the two instances' run ids differ)."""
    shown = {}
    for key in (upstream.key, downstream.key):
        status = get_and_update_asset_status_cache_value(instance, key, DAYS)
        latest = instance.fetch_materializations(key, limit=100).records
        shown[key.to_user_string()] = {
            "materialized": sorted(status.deserialize_materialized_partition_subsets(DAYS).get_partition_keys()),
            "failed": sorted(status.deserialize_failed_partition_subsets(DAYS).get_partition_keys()),
            "in_progress": sorted(status.deserialize_in_progress_partition_subsets(DAYS).get_partition_keys()),
            "latest_run_per_day": sorted({(record.partition_key, run_names[record.run_id]) for record in latest}),
            "last_run": run_names[instance.get_asset_records([key])[0].asset_entry.last_run_id],
        }
    executions = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(upstream.key, "has_rows"), limit=100)
    shown["checks"] = sorted((run_names[execution.run_id], execution.partition or "", execution.status.value)
                             for execution in executions)
    day_executions = instance.event_log_storage.get_asset_check_execution_history(DAY_CHECK, limit=100)
    shown["day_checks"] = sorted(
        (run_names[execution.run_id], execution.partition, execution.status.value,
         run_names[execution.event.asset_check_evaluation.target_materialization_data.run_id])
        for execution in day_executions)
    shown["day_check_status"] = sorted(
        (info.partition_key, info.latest_execution_status.value, run_names[info.latest_planned_run_id], info.is_current)
        for info in instance.event_log_storage.get_asset_check_partition_info([DAY_CHECK]))
    shown["events_in_order"] = {name: [entry.dagster_event_type.value if entry.is_dagster_event else "log message"
                                       for entry in instance.all_logs(run_id)] for run_id, name in run_names.items()}
    return shown


def ranged_runs(instance: DagsterInstance) -> list[str]:
    """A run over ten days whose downstream step fails, then a run over two of them that succeeds."""
    failing = materialize([upstream, downstream, each_day], instance=instance, raise_on_error=False,
                          tags={RANGE_START: "2026-01-01", RANGE_END: "2026-01-10", "fail": "yes"})
    passing = materialize([upstream, downstream, each_day], instance=instance,
                          tags={RANGE_START: "2026-01-03", RANGE_END: "2026-01-04"})
    assert not failing.success and passing.success
    return [failing.run_id, passing.run_id]


def test_batched_event_log_shows_every_day_as_dagster_own_storage_does(tmp_path, monkeypatch):
    """The same two runs through Dagster's SQLite event log and through the platform's (its dagster.yaml):
    the UI's per-day status, records and check executions agree, with a fraction of the storage calls."""
    monkeypatch.setenv(BATCH_SIZE_SETTING, str(EVENT_BATCH_SIZE))
    shown, meters = {}, {}
    for name, dagster_yaml in (("dagster", "telemetry:\n  enabled: false\n"),
                               ("platform", (TEMPLATES / "dagster.embedded.yaml").read_text())):
        dagster_home = tmp_path / name
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(dagster_yaml)
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
        with DagsterInstance.from_config(str(dagster_home)) as instance, EventLogMeter().measuring() as meter:
            run_names = {run_id: f"run {number}" for number, run_id in enumerate(ranged_runs(instance), start=1)}
            shown[name] = what_the_ui_shows(instance, run_names)
        meters[name] = meter.summary()
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage) == (name == "platform")

    days = [f"2026-01-{day:02d}" for day in range(1, 11)]
    assert shown["platform"] == shown["dagster"]
    assert shown["platform"]["upstream"]["materialized"] == days
    assert shown["platform"]["downstream"] == {
        "materialized": ["2026-01-03", "2026-01-04"], "failed": [day for day in days if day not in days[2:4]],
        "in_progress": [], "latest_run_per_day": [("2026-01-03", "run 2"), ("2026-01-04", "run 2")],
        "last_run": "run 2",
    }
    assert meters["platform"]["events"] == meters["dagster"]["events"]
    # First run: 20 planned asset-days and two check plans, 10 materialised (downstream failed); second: 4 + 2 and
    # 2 + 2: 42 events in 5 batches (a run's plans, a step's days of one asset) instead of 42 calls. Check evaluations:
    # `has_rows` once a run and `each_day` 10 and 2 times, 14 in 4 batches (a step's evaluations) instead of 14 calls.
    assert meters["platform"]["by_type"]["ASSET_CHECK_EVALUATION"] == 14
    assert meters["dagster"]["calls"] - meters["platform"]["calls"] == (42 - 5) + (14 - 4)
