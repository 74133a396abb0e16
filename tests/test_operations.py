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
from dagster_project.generator import generate
from dagster_project.operations.sensors import landing_zone_sensor

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
    requested = {key: set(tick.get_requested_partitions(key)) for key in
                 (AssetKey("fct_events"), AssetKey("intent_memories"), AssetKey("personas"), AssetKey(["raw", "web__events"]))}
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


def test_the_daemons_sensor_fails_a_run_whose_process_is_gone(home):
    import subprocess
    import sys

    from dagster import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    from dagster_project.operations.recovery import PID_TAG, launch_tags
    from dagster_project.operations.sensors import crashed_run_sensor

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with DagsterInstance.get() as instance:
        dead = create_run_for_test(instance, job_name="build_personas", status=DagsterRunStatus.STARTED,
                                   tags={**launch_tags(), PID_TAG: str(child.pid), "personas/process_start": ""})
        result = crashed_run_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert "1 crashed run(s) recovered" in result.skip_message
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        result = crashed_run_sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert result.skip_message == "No crashed runs."
