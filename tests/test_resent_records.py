"""Re-sent records: an event id already taken on another day or by another source is rejected in
staging as `duplicate`, naming the day and file:line of the copy kept, whatever order days run in.

Two hand-made days go through the real raw loader and dbt: once day by day in order (then day 1
again), once in reverse order and then as one range run.
"""

import json
from datetime import date

import pytest

from pipeline_helpers import WAREHOUSE_ASSETS, materialize_day, materialize_range, query, using_home

DAY1, DAY2 = date(2026, 10, 1), date(2026, 10, 2)
WEB1, SOCIAL1 = "landing/web/events/2026-10-01.jsonl", "landing/social/engagements/2026-10-01.jsonl"
WEB2, SOCIAL2 = "landing/web/events/2026-10-02.jsonl", "landing/social/engagements/2026-10-02.jsonl"


def _web(event_id: str, day: date, cookie: str) -> str:
    return json.dumps({"event_id": event_id, "ts": f"{day}T10:00:00.000Z", "session_id": "sess-1", "cookie_id": cookie,
                       "customer_id": None, "event_type": "page_view", "url": "/c/tennis_gear/racket",
                       "item_id": "I00001", "category": "tennis_gear", "title": "Wilson Pro Staff racket",
                       "query": None, "ip": None, "user_agent": "Mozilla/5.0 Chrome/120.0"})


def _social(engagement_id: str, day: date, handle: str) -> str:
    return json.dumps({"engagement_id": engagement_id, "ts": f"{day}T11:00:00.000Z", "handle": handle,
                       "action": "like", "post_id": "P00001", "text": "What a final", "tags": ["tennis"]})


LANDING = {
    WEB1: [_web("w-1", DAY1, "ck-a"), _web("w-2", DAY1, "ck-b"), _web("x-1", DAY1, "ck-a")],
    SOCIAL1: [_social("x-1", DAY1, "@fan_one")],                        # x-1 again, from another source
    WEB2: [_web("w-3", DAY2, "ck-c"), _web("w-1", DAY2, "ck-a")],     # w-1 re-sent a day later
    SOCIAL2: [_social("s-2", DAY2, "@fan_two"), _social("w-2", DAY2, "@fan_two")],  # w-2 re-sent by social
}
# (file, line, first day, first copy) of every duplicate when day 1 is processed first
IN_ORDER_DUPLICATES = {
    (WEB1, 3, DAY1, f"{SOCIAL1}:1"),   # same day, two sources: the first file:line wins
    (WEB2, 2, DAY1, f"{WEB1}:1"),
    (SOCIAL2, 2, DAY1, f"{WEB1}:2"),
}


def _write_landing(home) -> None:
    for relative, lines in LANDING.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")


def _duplicates() -> set[tuple]:
    return set(query("select landing_file, line_no, duplicate_of_date, duplicate_of from rejected_events "
                     "where reason = 'duplicate'"))


def _events() -> list[tuple]:
    return query("select event_id, event_date, landing_file, line_no from fct_events order by event_id")


def _assert_every_id_once_and_every_line_accounted_for() -> None:
    assert query("select count(*), count(distinct event_id) from fct_events")[0] == (5, 5)
    counts = query("select source, entity, event_date, raw_lines, staged, rejected from audit_record_counts")
    assert len(counts) == 4
    assert all(raw_lines == staged + rejected for *_, raw_lines, staged, rejected in counts), counts


@pytest.fixture(scope="module")
def in_order_home(tmp_path_factory):
    """Day 1, then day 2, each in its own run."""
    with using_home(tmp_path_factory.mktemp("resent_in_order")) as home:
        _write_landing(home)
        materialize_day(DAY1, selection=WAREHOUSE_ASSETS)
        materialize_day(DAY2, selection=WAREHOUSE_ASSETS)
        yield home


def test_resent_records_are_rejected_in_staging_naming_the_first_copy(in_order_home):
    assert _duplicates() == IN_ORDER_DUPLICATES
    assert _events() == [
        ("s-2", DAY2, SOCIAL2, 1), ("w-1", DAY1, WEB1, 1), ("w-2", DAY1, WEB1, 2), ("w-3", DAY2, WEB2, 1),
        ("x-1", DAY1, SOCIAL1, 1),
    ]
    _assert_every_id_once_and_every_line_accounted_for()
    # staging itself no longer holds the second copies: the fct_events test is only a backstop
    assert query("select event_id, line_no from stg_web__events order by event_id") == [("w-3", 1)]
    assert query("select engagement_id from stg_social__engagements") == [("s-2",)]


def test_rerunning_a_day_does_not_count_its_own_rows_as_resent(in_order_home):
    before = {table: sorted(query(f"select * from {table}")) for table in ("fct_events", "rejected_events")}
    materialize_day(DAY1, selection=WAREHOUSE_ASSETS)  # its w-1, w-2 and x-1 are in fct_events already
    after = {table: sorted(query(f"select * from {table}")) for table in ("fct_events", "rejected_events")}
    assert after == before


def test_days_run_in_reverse_order_keep_one_row_per_id_and_a_range_run_keeps_the_earliest(tmp_path):
    with using_home(tmp_path / "home") as home:
        _write_landing(home)
        materialize_day(DAY2, selection=WAREHOUSE_ASSETS)
        materialize_day(DAY1, selection=WAREHOUSE_ASSETS)
        # whichever day ran first keeps the id; the other names it
        assert _duplicates() == {
            (WEB1, 1, DAY2, f"{WEB2}:2"),
            (WEB1, 2, DAY2, f"{SOCIAL2}:2"),
            (WEB1, 3, DAY1, f"{SOCIAL1}:1"),
        }
        _assert_every_id_once_and_every_line_accounted_for()

        materialize_range(DAY1, DAY2, selection=WAREHOUSE_ASSETS)
        assert _duplicates() == IN_ORDER_DUPLICATES
        _assert_every_id_once_and_every_line_accounted_for()
