"""The benchmark's references segment exactly like `science.segmentation` on the same events."""

from datetime import date

import duckdb
import polars as pl

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

    ours = segment_intent_memories(events.with_columns(event_date=pl.col("ts").dt.date(), action=pl.lit("click")))
    by_pandas = pandas_segment(events.to_pandas())
    assert ours.height > 500
    assert floor_segment(events.to_pandas()) == len(by_pandas) == ours.height
    assert run_duckdb_floor(tmp_path / "landing", DAY) == ours.height
    assert sorted(map(tuple, by_pandas["event_ids"])) == sorted(map(tuple, ours["event_ids"].to_list()))
