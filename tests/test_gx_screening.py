"""Screened GX frames keep every row that breaks an expectation, and row-count gates stay exact."""

from datetime import date

import duckdb

from dagster_project.quality.screening import (
    row_count_violated,
    scaled_row_count_parameters,
    screened_frame_sql,
    suspect_counts_sql,
)

EXPECTATIONS = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_not_match_regex",
     "kwargs": {"column": "text", "regex": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"}},
    {"type": "expect_column_values_to_not_match_regex", "kwargs": {"column": "text", "regex": r"\b\d{3}-\d{4}\b"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "action", "value_set": ["view", "like"],
     "row_condition": {"column": {"name": "source"}, "operator": "IN", "parameter": ["web"], "type": "comparison"}}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "ts", "min_value": {"$PARAMETER": "partition_start"},
                "max_value": {"$PARAMETER": "partition_end"}, "strict_max": True}},
    {"type": "expect_table_row_count_to_be_between",
     "kwargs": {"min_value": {"$PARAMETER": "min_row_count"}, "max_value": {"$PARAMETER": "max_row_count"}}},
]


def test_screened_frame_holds_every_violation_plus_a_bounded_sample():
    connection = duckdb.connect()
    connection.execute("""
        create table events as
        select range::varchar as id, 'web' as source, 'view' as action, 'plain text ' || range as text,
               timestamp '2026-10-01 00:00:00' + to_seconds(range) as ts, date '2026-10-01' as event_date
        from range(5000)""")
    connection.execute("""
        insert into events values
            (null, 'web', 'view', 'no id', timestamp '2026-10-01 01:00:00', date '2026-10-01'),
            ('17', 'web', 'view', 'a duplicate id', timestamp '2026-10-01 01:00:00', date '2026-10-01'),
            ('x1', 'web', 'view', 'write to jane.doe@example.com', timestamp '2026-10-01 01:00:00', date '2026-10-01'),
            ('x2', 'web', 'buy', 'unknown web action', timestamp '2026-10-01 01:00:00', date '2026-10-01'),
            ('x3', 'crm', 'buy', 'other sources may buy', timestamp '2026-10-01 01:00:00', date '2026-10-01'),
            ('x4', 'web', 'view', 'next day', timestamp '2026-10-02 00:00:00', date '2026-10-01'),
            ('x5', 'web', 'view', 'call 555-0199', timestamp '2026-10-01 01:00:00', date '2026-10-01')""")
    sql = screened_frame_sql("select * from events", EXPECTATIONS, limit=100, day_column="event_date")
    frame = connection.sql(sql).pl()
    # 7 suspects (the null, both 17s, email, phone, web 'buy', next day) + 100 sampled
    assert frame.height == 107
    assert {"x1", "x2", "x4", "x5", "17"} <= set(frame["id"].drop_nulls()) and frame["id"].null_count() == 1
    assert frame.sort("id", "text").equals(connection.sql(sql).pl().sort("id", "text"))  # deterministic


def test_one_screen_judges_each_day_of_a_range_by_its_own_bounds_and_keys():
    """Three days in one query: an id may recur on another day but not within one; a timestamp must lie in its row's day."""
    connection = duckdb.connect()
    connection.execute("""
        create table events as
        select (range % 300)::varchar as id, 'web' as source, 'view' as action, 'plain text' as text,
               date '2026-10-01' + (range // 300)::int as event_date,
               (date '2026-10-01' + (range // 300)::int)::timestamp + to_seconds(range % 300) as ts
        from range(900)""")
    connection.execute("""
        insert into events by name select * from (values
            ('5', 'web', 'view', 'the same id twice on the second day', timestamp '2026-10-02 03:00:00', date '2026-10-02'),
            ('y1', 'web', 'view', 'the first day, stamped in the third', timestamp '2026-10-03 03:00:00', date '2026-10-01')
        ) as rows(id, source, action, text, ts, event_date)""")
    counts = connection.sql(suspect_counts_sql("select * from events", EXPECTATIONS, "event_date")).fetchall()
    assert sorted(counts) == [(date(2026, 10, 1), 301, 1), (date(2026, 10, 2), 301, 2), (date(2026, 10, 3), 300, 0)]
    frame = connection.sql(screened_frame_sql("select * from events", EXPECTATIONS, limit=10, day_column="event_date")).pl()
    per_day = dict(frame.group_by("event_date").len().iter_rows())
    assert per_day == {date(2026, 10, 1): 11, date(2026, 10, 2): 12, date(2026, 10, 3): 10}
    assert {"y1", "5"} <= set(frame["id"])


def test_row_count_bounds_are_judged_without_great_expectations():
    bounds = {"min_row_count": 100, "max_row_count": 200}
    assert [row_count_violated(EXPECTATIONS, bounds, rows) for rows in (99, 100, 200, 201)] == [True, False, False, True]
    assert not row_count_violated(EXPECTATIONS, {"min_row_count": 0, "max_row_count": None}, 10**9)


def test_scaled_row_count_bounds_decide_like_the_full_count():
    for day_rows in (900, 1000, 1500, 2000, 2001):
        scaled = scaled_row_count_parameters({"min_row_count": 1000, "max_row_count": 2000}, 106, day_rows)
        full_passes = 1000 <= day_rows <= 2000
        assert (scaled["min_row_count"] <= 106 <= scaled["max_row_count"]) == full_passes


def test_a_day_of_exactly_the_bound_passes_after_scaling():
    """2,141 * (2,000 / 2,141) is not 2,000 in floating point; a day of exactly the bound must still pass."""
    for frame_rows, day_rows in ((2000, 2141), (2000, 2169), (10007, 10012), (2003, 399996)):
        scaled = scaled_row_count_parameters(
            {"min_row_count": day_rows, "max_row_count": day_rows}, frame_rows, day_rows
        )
        assert scaled["min_row_count"] == frame_rows == scaled["max_row_count"]
        below = scaled_row_count_parameters({"min_row_count": day_rows + 1, "max_row_count": None}, frame_rows, day_rows)
        assert below["min_row_count"] > frame_rows
