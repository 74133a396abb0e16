"""The landing reader never fails a day on one record: odd CSV and JSONL lines become rejected lines.

A crafted day (tests/crafted_landing.py) gets a tickets file with a BOM, a stray quote, a quoted
newline, a unit-separator byte, an escaped quote and an oversized line; a 0-byte devices file; and
an oversized web line. The real raw loader and dbt run over it, then `personas forget` erases the
person whose lines these are.
"""

import pytest

from crafted_landing import DAY, EXPECTED_REJECTS, LATER, PHONE, _web, write_crafted_day
from dagster_project.ingest.landing import (
    LANDING_ENTITIES,
    LandingFileError,
    max_line_bytes,
    read_landing_file,
)
from dagster_project.privacy.erasure import forget
from pipeline_helpers import WAREHOUSE_ASSETS, materialize_day, query, using_home

TICKETS = "landing/crm/tickets/2026-10-01.csv"
WEB = "landing/web/events/2026-10-01.jsonl"
LONG_TEXT = "x" * 70_000  # above the default cap of 64 KiB
TICKET_LINES = [
    "\ufeffticket_id,customer_id,ts,channel,subject,body",                    # 1 header behind a UTF-8 BOM
    f't-1,C000001,{LATER},email,Racket string broke,"Please call me, {PHONE}"',  # 2 clean
    f't-2,C000001,{LATER},email,My 27" monitor,flickers',                   # 3 stray quote
    f't-3,C000001,{LATER},chat,"Two',                                        # 4 quoted newline ...
    'lines",body',                                                           # 5 ... its second line
    f"t-4,C000001,{LATER},chat,unit\x1fseparator,ok",                        # 6 clean, holds the byte 0x1f
    f"t-5,C000001,{LATER},chat,long,{LONG_TEXT}",                            # 7 oversized
    f't-6,C000001,{LATER},chat,"He said ""hi"", twice",ok',                  # 8 clean, escaped quotes
]
NEW_REJECTS = {
    (TICKETS, 3, "malformed_record"),
    (TICKETS, 4, "malformed_record"),
    (TICKETS, 5, "malformed_record"),
    (TICKETS, 7, "oversized"),
    (WEB, 12, "oversized"),
}


def _entity(table):
    return next(entity for entity in LANDING_ENTITIES if entity.table == table)


def _write_odd_files(home):
    write_crafted_day(home)
    landing = home / "landing"
    (landing / "crm" / "tickets" / "2026-10-01.csv").write_bytes(("\n".join(TICKET_LINES) + "\n").encode())
    (landing / "iot" / "devices" / "2026-10-01.csv").write_bytes(b"")
    with (landing / "web" / "events" / "2026-10-01.jsonl").open("ab") as web:
        web.write((_web("w-12", title=LONG_TEXT) + "\n").encode())


@pytest.fixture(scope="module")
def odd_home(tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("odd")) as home:
        _write_odd_files(home)
        materialize_day(DAY, selection=WAREHOUSE_ASSETS)
        yield home


def test_the_reader_gives_one_row_per_physical_line_with_its_flags(tmp_path):
    _write_odd_files(tmp_path)
    tickets = read_landing_file(tmp_path / TICKETS, _entity("crm__tickets"), DAY, tmp_path)
    assert tickets["line_no"].to_list() == list(range(2, 9))
    assert tickets["malformed"].to_list() == [False, True, True, True, False, False, False]
    assert tickets["oversized"].to_list() == [False, False, False, False, False, True, False]
    assert tickets["subject"].to_list()[4:] == ["unit\x1fseparator", "long", 'He said "hi", twice']
    assert tickets["raw"][4] == TICKET_LINES[5]  # the 0x1f byte does not cut the line
    assert tickets["raw"].str.len_chars().max() == max_line_bytes()
    devices = read_landing_file(tmp_path / "landing/iot/devices/2026-10-01.csv", _entity("iot__devices"), DAY, tmp_path)
    assert devices.is_empty()


def test_the_line_cap_is_a_setting(tmp_path, monkeypatch):
    _write_odd_files(tmp_path)
    monkeypatch.setenv("PERSONAS_MAX_LINE_BYTES", "60")
    tickets = read_landing_file(tmp_path / TICKETS, _entity("crm__tickets"), DAY, tmp_path)
    assert tickets["oversized"].to_list() == [len(line.encode()) > 60 for line in TICKET_LINES[1:]]
    assert tickets["oversized"].sum() == 4 and tickets["raw"].str.len_chars().max() == 60
    monkeypatch.setenv("PERSONAS_MAX_LINE_BYTES", "lots")
    with pytest.raises(ValueError, match="PERSONAS_MAX_LINE_BYTES"):
        max_line_bytes()


def test_every_odd_line_is_rejected_with_file_line_and_reason(odd_home):
    rejected = set(query("select landing_file, line_no, reason from rejected_events"))
    assert rejected == EXPECTED_REJECTS | NEW_REJECTS


def test_every_raw_line_is_staged_or_rejected(odd_home):
    rows = query("select source, entity, raw_lines, staged, rejected from audit_record_counts")
    assert all(raw_lines == staged + rejected for _, _, raw_lines, staged, rejected in rows)
    tickets = next(row for row in rows if row[:2] == ("crm", "tickets"))
    assert tickets[2:] == (7, 3, 4)


def test_clean_lines_around_the_odd_ones_are_staged(odd_home):
    subjects = query("select ticket_id, subject from stg_crm__tickets order by ticket_id")
    assert subjects == [("t-1", "Racket string broke"), ("t-4", "unit\x1fseparator"), ("t-6", 'He said "hi", twice')]


def test_an_oversized_line_is_kept_only_up_to_the_cap(odd_home):
    lengths = query("select max(length(raw)) from rejected_events where reason = 'oversized'")
    assert lengths == [(max_line_bytes(),)]
    assert query(f"select count(*) from fct_events where length(text) > {max_line_bytes()}") == [(0,)]


def test_a_wrong_header_still_fails_naming_the_file_without_a_bom_in_the_way(tmp_path):
    path = tmp_path / "landing" / "crm" / "tickets" / "2026-10-01.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes("\ufeffticket,customer\nt-1,C1\n".encode())
    with pytest.raises(LandingFileError, match=r"tickets/2026-10-01\.csv:1: expected the CSV header 'ticket_id,.*"
                                               r"found 'ticket,customer' \(after a UTF-8 BOM\)"):
        read_landing_file(path, _entity("crm__tickets"), DAY, tmp_path)


def test_forget_works_whatever_the_landing_zone_holds(odd_home):
    orders = odd_home / "landing" / "crm" / "orders"
    (orders / "2026-10-02.csv").write_text("order,customer\no-9,C000001\n")  # a file the raw load refuses
    (orders / "notes.csv").write_text("not a daily file\n")
    report = forget(odd_home, "cookie", "ck-aaa")
    assert report.unreadable_landing_files == ["landing/crm/orders/2026-10-02.csv"]
    assert report.landing_lines_removed > 0
    tickets = (odd_home / TICKETS).read_bytes().decode()
    assert "C000001" not in tickets and tickets.startswith("\ufeffticket_id,")
    assert "ck-aaa" not in (odd_home / WEB).read_bytes().decode("utf-8", "replace")
