"""Operations: the landing sensor against a real instance, and automation after a source change."""

import json
import os
from datetime import date, timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    build_sensor_context,
    evaluate_automation_conditions,
    materialize,
)

from dagster_project.definitions import defs
from dagster_project.defs.operations.sensors import landing_zone_sensor
from dagster_project.generator import generate

START = date(2026, 10, 1)


def _tick(instance, cursor):
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    result = landing_zone_sensor.evaluate_tick(context)
    return sorted(request.partition_key for request in result.run_requests), result.cursor


def test_the_sensor_requests_exactly_the_days_whose_files_changed(home):
    generate(home, days=3, people=100, events_per_day=300, seed=3, start_date=START, world="easy")
    with DagsterInstance.get() as instance:
        requested, cursor = _tick(instance, None)
        assert requested == ["2026-10-01", "2026-10-02", "2026-10-03"]
        assert _tick(instance, cursor)[0] == []

        orders = home / "landing" / "crm" / "orders" / "2026-10-02.csv"
        os.utime(orders, ns=(orders.stat().st_atime_ns, orders.stat().st_mtime_ns + 10**9))
        requested, cursor = _tick(instance, cursor)
        assert requested == []  # touched, same content

        orders.write_bytes(orders.read_bytes().replace(b"EUR", b"GBP", 1))
        requested, cursor = _tick(instance, cursor)
        assert requested == ["2026-10-02"]

        new_file = home / "landing" / "web" / "events" / "2026-10-04.jsonl"
        new_file.write_bytes((home / "landing" / "web" / "events" / "2026-10-03.jsonl").read_bytes())
        requested, cursor = _tick(instance, cursor)
        assert requested == ["2026-10-04"]
        assert "web/events/2026-10-04.jsonl" in json.loads(cursor)


def _requested(result, *keys):
    return {key: set(result.get_requested_partitions(key)) for key in keys}


def test_a_changed_day_reruns_that_day_and_the_windows_that_contain_it(home):
    generate(home, days=2, people=100, events_per_day=300, seed=3, start_date=START, world="easy")
    day = START + timedelta(days=1)
    instance = DagsterInstance.ephemeral()
    tick = evaluate_automation_conditions(defs=defs, instance=instance)
    # What the landing sensor requests for a changed file of `day`:
    materialize(defs.assets, selection=AssetSelection.groups("raw"), resources=defs.resources,
                partition_key=day.isoformat(), instance=instance)
    tick = evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    watched = (AssetKey("fct_events"), AssetKey("intent_memories"), AssetKey("personas"), AssetKey(["raw", "web__events"]))
    requested = {key: set(tick.get_requested_partitions(key)) for key in watched}
    assert requested[AssetKey("fct_events")] == {day.isoformat()}
    assert requested[AssetKey("intent_memories")] == {day.isoformat()}
    assert requested[AssetKey("personas")] == {(day + timedelta(days=offset)).isoformat() for offset in range(28)}
    assert requested[AssetKey(["raw", "web__events"])] == set()


def test_the_days_around_blocked_ones_form_the_persona_reruns():
    from dagster import AssetKey

    from dagster_project.operations.ranges import persona_assets, ranges_between

    first, last = date(2026, 9, 1), date(2026, 9, 10)
    blocked = {date(2026, 9, 1), date(2026, 9, 4), date(2026, 9, 5), date(2026, 9, 10)}
    assert ranges_between(first, last, blocked) == [(date(2026, 9, 2), date(2026, 9, 3)),
                                                     (date(2026, 9, 6), date(2026, 9, 9))]
    assert ranges_between(first, last, set()) == [(first, last)]
    rerun = persona_assets(defs.resolve_asset_graph())
    assert AssetKey("personas") in rerun and AssetKey("intent_memories") in rerun
    assert AssetKey("fct_events") not in rerun and AssetKey("stg_web__events") not in rerun  # no warehouse rebuild


def test_the_daemons_sensor_fails_a_run_whose_process_is_gone_and_frees_an_ended_runs_slot(home):
    import subprocess
    import sys

    from dagster import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    from dagster_project.defs.operations.sensors import crashed_run_sensor
    from dagster_project.operations.recovery import PGID_TAG, PID_TAG, launch_tags
    from dagster_project.resources.duckdb import DUCKDB_POOL

    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait()
    with DagsterInstance.get() as instance:
        dead = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED,
                                   tags={**launch_tags(), PID_TAG: str(child.pid), PGID_TAG: str(child.pid),
                                         "personas/process_start": ""})
        result = crashed_run_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert "1 crashed run(s) recovered" in result.skip_message
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        result = crashed_run_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert result.skip_message == "No crashed runs."

        ended = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.CANCELED)
        instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        assert instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, ended.run_id, "dbt_warehouse").is_claimed
        result = crashed_run_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert result.skip_message == "No crashed runs. Pool slots of 1 ended run(s) freed."
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).claimed_slots == []


def _hold_warehouse(path, seconds: float):
    """A child process that holds the warehouse's write lock for `seconds`, started once it holds it."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
         f"time.sleep({seconds}); c.close()"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_evaluate_waits_for_a_writer_and_says_so_when_it_does_not_finish(home, monkeypatch, capsys):
    import duckdb

    from dagster_project.cli import main
    from dagster_project.evaluation import evaluate
    from dagster_project.paths import warehouse_path

    duckdb.connect(str(warehouse_path(home))).close()
    holder = _hold_warehouse(warehouse_path(home), 2)
    report = evaluate(home)  # waits for the writer instead of failing on its lock
    assert holder.wait() == 0
    assert report["as_of"] is None and "personas" in report["missing_tables"]

    monkeypatch.setattr("dagster_project.evaluation.LOCK_WAIT_SECONDS", 0.5)
    holder = _hold_warehouse(warehouse_path(home), 30)
    try:
        assert main(["evaluate", "--home", str(home)]) == 1
    finally:
        holder.kill()
        holder.wait()
    assert "The warehouse is busy" in capsys.readouterr().err


def _gated_world(failing_gate: str):
    """A small graph shaped like the real one (a warehouse table, memories, the non-subsettable persona fit,
    a consumer) with a blocking gate on `fct_events` and on `personas`; `failing_gate` fails for one day."""
    from dagster import (
        AssetCheckResult,
        AssetCheckSeverity,
        AssetOut,
        Definitions,
        Output,
        asset,
        asset_check,
        multi_asset,
    )

    @asset(name="fct_events")
    def fct_events():
        return 1

    @asset(name="intent_memories", deps=[fct_events])
    def intent_memories():
        return 1

    @multi_asset(outs={"personas": AssetOut(), "user_personas": AssetOut()}, deps=[intent_memories], can_subset=False)
    def persona_model():
        yield Output(1, "personas")
        yield Output(1, "user_personas")

    @asset(name="persona_utility", deps=["personas", "user_personas"])
    def persona_utility():
        return 1

    def gate(asset_key: str):
        @asset_check(asset=asset_key, name=f"gx_{asset_key}", blocking=True)
        def check():
            failing = f"gx_{asset_key}" == failing_gate
            return AssetCheckResult(passed=not failing, severity=AssetCheckSeverity.ERROR,
                                    metadata={"failed_partitions": "2026-09-02" if failing else "none"})

        return check

    assets = [fct_events, intent_memories, persona_model, persona_utility]
    checks = [gate("fct_events"), gate("personas")]
    result = materialize([*assets, *checks], raise_on_error=False, instance=DagsterInstance.ephemeral())
    return result, Definitions(assets=assets, asset_checks=checks).resolve_asset_graph()


def test_a_persona_gate_reruns_only_what_it_kept_from_running_and_says_what_the_day_keeps():
    from dagster_project.cli import blocked_summary
    from dagster_project.operations.ranges import (
        RangeOutcome,
        blocked_days,
        skipped_persona_assets,
        warehouse_gates_failed,
    )

    result, graph = _gated_world("gx_personas")
    assert blocked_days(result) == {date(2026, 9, 2): ["gx_personas"]}
    assert warehouse_gates_failed(result, graph) == set()
    # The fit ran for the whole range: rerunning it would fit every other day twice.
    assert skipped_persona_assets(result, graph) == [AssetKey("persona_utility")]
    outcome = RangeOutcome(result, blocked=blocked_days(result), warehouse_gates=set())
    assert "the gated table's rows are kept, failing ones included" in blocked_summary(outcome)

    result, graph = _gated_world("gx_fct_events")
    assert warehouse_gates_failed(result, graph) == {"gx_fct_events"}
    assert skipped_persona_assets(result, graph) == [
        AssetKey(name) for name in ("intent_memories", "persona_utility", "personas", "user_personas")]
    outcome = RangeOutcome(result, blocked=blocked_days(result), warehouse_gates={"gx_fct_events"})
    assert "memories and personas not rebuilt (an earlier run's, if any, are kept and stale)" in blocked_summary(outcome)
