"""The raw load of a range reads each file's lines on its own and derives every column in one pass."""

from datetime import date, timedelta

import polars as pl

from dagster_project.ingest.landing import LANDING_ENTITIES, read_landing_days, read_landing_file

TICKETS = next(entity for entity in LANDING_ENTITIES if entity.table == "crm__tickets")
DAY = date(2026, 10, 1)
HEADER = "ticket_id,customer_id,ts,channel,subject,body"
TS = "2026-10-01T10:00:00Z"


def test_a_range_of_files_reads_as_each_file_alone(tmp_path):
    """Quoted fields on the same line numbers of two files stay with their own file; a BOM or a missing day too."""
    days = [DAY + timedelta(days=offset) for offset in range(4)]
    files = {
        days[0]: f'{HEADER}\nt-1,C1,{TS},email,"Quoted, with a comma",ok\nt-2,C1,{TS},chat,plain,ok\n',
        days[1]: f'\ufeff{HEADER}\nt-3,C2,{TS},chat,plain,ok\nt-4,C2,{TS},email,"He said ""hi""",done',
        # days[2]: no file that day
        days[3]: f'{HEADER}\nt-5,C3,{TS},chat,"unbalanced,ok\n\nt-6,C3,{TS},chat,"A, B",ok\n',
    }
    for day, text in files.items():
        path = TICKETS.path(tmp_path / "landing", day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    rows, missing = read_landing_days(tmp_path / "landing", TICKETS, days, tmp_path)

    assert missing == [days[2]]
    one_by_one = pl.concat([read_landing_file(TICKETS.path(tmp_path / "landing", day), TICKETS, day, tmp_path)
                            for day in files])
    assert rows.equals(one_by_one)
    by_id = {row["ticket_id"]: row for row in rows.iter_rows(named=True) if row["ticket_id"]}
    assert by_id["t-1"]["subject"] == "Quoted, with a comma" and by_id["t-1"]["line_no"] == 2
    assert by_id["t-3"]["event_date"] == days[1] and by_id["t-3"]["line_no"] == 2  # the BOM cost no line
    assert by_id["t-4"]["subject"] == 'He said "hi"'
    assert by_id["t-6"]["subject"] == "A, B" and not by_id["t-6"]["malformed"]
    assert rows.filter(pl.col("line_no") == 2, pl.col("event_date") == days[3])["malformed"].to_list() == [True]
    assert rows.height == 2 + 2 + 3  # every physical line after each header, the blank one included
