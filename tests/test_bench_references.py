"""The benchmark's references segment exactly like `science.segmentation` on the same events."""

from datetime import date

import duckdb
import polars as pl
import pytest

from dagster_project.bench.references import floor_segment, floor_statements, pandas_segment, run_duckdb_floor
from dagster_project.generator import generate
from dagster_project.science.segmentation import segment_intent_memories

DAY = date(2026, 10, 1)


def test_floor_pandas_and_our_segmentation_find_the_same_memories(tmp_path):
    generate(tmp_path, days=1, people=300, events_per_day=3000, seed=3, start_date=DAY, world="easy")
    staging, _ = floor_statements(tmp_path / "landing", DAY)
    with duckdb.connect() as connection:
        connection.execute(staging)
        events = connection.sql("select * from floor_events").pl()
    assert events.height > 2000 and events["intent"].null_count() > 0

    ours = segment_intent_memories(
        events.with_columns(event_date=pl.col("ts").dt.date(), action=pl.lit("click"), category=pl.col("intent")))
    by_pandas = pandas_segment(events.to_pandas())
    assert ours.height > 500
    assert floor_segment(events.to_pandas()) == len(by_pandas) == ours.height
    assert run_duckdb_floor(tmp_path / "landing", DAY) == ours.height
    assert sorted(map(tuple, by_pandas["event_ids"])) == sorted(map(tuple, ours["event_ids"].to_list()))


def _run(days: int, events: int, seconds: float) -> dict:
    stages = {"checks (GX gates)": {"seconds": seconds / 10, "peak_rss_mb": 500.0}}
    return {"days": days, "events": events, "end_to_end_s": seconds, "peak_rss_mb": 900.0, "success": True,
            "stages": stages}


def test_the_fixed_cost_per_day_is_the_days_term_of_the_shapes_fit():
    from dagster_project.bench.__main__ import parse_histories, per_day_fixed_seconds

    assert parse_histories("200x500, 30x30000") == [(200, 500), (30, 30_000)]
    with pytest.raises(ValueError, match="1x500"):
        parse_histories("1x500")
    shapes = [(1, 1_000_000), (200, 100_000), (30, 900_000), (60, 60_000)]
    runs = [_run(days, events, 12.0 + 0.4 * days + 25e-6 * events) for days, events in shapes]
    assert per_day_fixed_seconds(runs) == pytest.approx(0.4)
    assert per_day_fixed_seconds(runs[:2]) is None  # two shapes cannot separate days from events
    # 2026-12-04's medians: the fit's terms are -8,060 s, 37.4 s a day and 8 ms an event, which is no cost model.
    measured = [_run(1, 1_000_000, 43.0), _run(200, 100_000, 220.4), _run(30, 900_000, 320.1)]
    assert per_day_fixed_seconds(measured) is None


def test_the_report_lists_each_history_beside_the_main_day():
    from dagster_project.bench.report import machine_description, markdown_report

    main = _run(1, 1_000_000, 40.0) | {
        "events_per_s": 25_000.0, "generate_s": 1.0, "import_s": 1.0, "deploy_s": 1.0, "memory_stage_s": 3.0,
        "duckdb_floor_s": 3.5, "pandas_s": 25.0, "memories": {"ours": 10, "duckdb_floor": 11, "pandas": 11}}
    histories = {(200, 500): [_run(200, 100_000, seconds) for seconds in (150.0, 130.0, 170.0)]}
    machine = machine_description()
    report = markdown_report({1_000_000: main}, 1_000_000, [main], machine, machine, histories, 0.41)
    [row] = [line for line in report.splitlines() if line.startswith("| 200 x 500")]
    assert "| 150.0 | 0.75 |" in row and "| 15.0 |" in row and row.endswith("| 150 / 130 / 170 |")
    assert "Fixed cost per day: **0.41 s**" in report
    # No fit: two shapes say nothing; three whose fit has a negative term say so.
    assert "Fixed cost per day" not in markdown_report({1_000_000: main}, 1_000_000, [main], machine, machine,
                                                       histories, None)
    histories[(30, 30_000)] = [_run(30, 900_000, 320.0)]
    assert "Fixed cost per day: not fitted" in markdown_report({1_000_000: main}, 1_000_000, [main], machine, machine,
                                                               histories, None)


def test_histories_only_replaces_the_many_small_days_section_and_keeps_the_rest():
    from dagster_project.bench.__main__ import median_run, per_day_fixed_seconds
    from dagster_project.bench.report import machine_description, with_histories_section

    event_log = {"seconds": 6.0, "calls": 500, "events": 3_300, "by_type": {"PIPELINE_START": 2}}
    history_runs = {(30, 500): [_run(30, 15_000, 60.0) | {"event_log": event_log}],
                    (60, 500): [_run(60, 30_000, 96.0)],
                    (30, 2000): [_run(30, 60_000, 105.0)]}
    fixed_s = per_day_fixed_seconds([median_run(runs) for runs in history_runs.values()])
    # 45,000 more events in as many days: 45 s, 1 ms an event; 30 more days of 500 events: 36 s = 30 x (0.7 + 0.5).
    assert fixed_s == pytest.approx(0.7)
    previous = "# Benchmarks\n\n## 1,000,000 events in one day\n\nkept\n\n## Many small days\n\nold numbers\n"
    report = with_histories_section(previous, history_runs, fixed_s, machine_description())
    assert report.startswith("# Benchmarks\n\n## 1,000,000 events in one day\n\nkept\n\n## Many small days\n")
    assert "old numbers" not in report and report.count("## Many small days") == 1
    [row] = [line for line in report.splitlines() if line.startswith("| 30 x 500 ")]
    assert "| 2 | 6.0 | 110 |" in row  # runs, seconds storing Dagster events, events stored per day
    assert "30 → 60 days of 500 events: **1.20 s per added day**" in report
    assert "Fixed cost per day: **0.70 s**" in report and "these shapes" in report
