"""Dagster's event log: no fsync for Dagster's SQLite files, full fsync for every other SQLite store; a batch of
per-day events in one transaction, with the same per-day truth in the UI."""

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from dagster_project.bench.event_log_meter import EventLogMeter
from dagster_project.deploy.profile import TEMPLATES
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
    return shown


def ranged_runs(instance: DagsterInstance) -> list[str]:
    """A run over ten days whose downstream step fails, then a run over two of them that succeeds."""
    failing = materialize([upstream, downstream], instance=instance, raise_on_error=False,
                          tags={RANGE_START: "2026-01-01", RANGE_END: "2026-01-10", "fail": "yes"})
    passing = materialize([upstream, downstream], instance=instance,
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
    # First run: 20 planned asset-days and a check plan, 10 materialised (downstream failed); second: 4 + 1 and 2 + 2.
    # 40 events in 5 batches (a run's plans, a step's days of one asset) instead of 40 calls.
    assert meters["dagster"]["calls"] - meters["platform"]["calls"] == 40 - 5
