"""Screened GX frames keep every row that breaks an expectation, and row-count gates stay exact."""

from datetime import datetime

import duckdb

from dagster_project.quality.screening import scaled_row_count_parameters, screened_frame_sql

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
PARAMETERS = {"partition_start": datetime(2026, 10, 1), "partition_end": datetime(2026, 10, 2)}


def test_screened_frame_holds_every_violation_plus_a_bounded_sample():
    connection = duckdb.connect()
    connection.execute("""
        create table events as
        select range::varchar as id, 'web' as source, 'view' as action, 'plain text ' || range as text,
               timestamp '2026-10-01 00:00:00' + to_seconds(range) as ts
        from range(5000)""")
    connection.execute("""
        insert into events values
            (null, 'web', 'view', 'no id', timestamp '2026-10-01 01:00:00'),
            ('17', 'web', 'view', 'a duplicate id', timestamp '2026-10-01 01:00:00'),
            ('x1', 'web', 'view', 'write to jane.doe@example.com', timestamp '2026-10-01 01:00:00'),
            ('x2', 'web', 'buy', 'unknown web action', timestamp '2026-10-01 01:00:00'),
            ('x3', 'crm', 'buy', 'other sources may buy', timestamp '2026-10-01 01:00:00'),
            ('x4', 'web', 'view', 'next day', timestamp '2026-10-02 00:00:00'),
            ('x5', 'web', 'view', 'call 555-0199', timestamp '2026-10-01 01:00:00')""")
    sql = screened_frame_sql("select * from events", EXPECTATIONS, PARAMETERS, limit=100)
    frame = connection.sql(sql).pl()
    # 7 suspects (the null, both 17s, email, phone, web 'buy', next day) + 100 sampled
    assert frame.height == 107
    assert {"x1", "x2", "x4", "x5", "17"} <= set(frame["id"].drop_nulls()) and frame["id"].null_count() == 1
    assert frame.sort("id", "text").equals(connection.sql(sql).pl().sort("id", "text"))  # deterministic


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
