"""A crafted landing day with every kind of broken record goes through the real raw loader and dbt."""

import pytest

from crafted_landing import DAY, EMAIL, EXPECTED_REJECTS, FIRST_NAME, IP, LAST_NAME, PHONE, write_crafted_day
from dagster_project.ingest.landing import LANDING_ENTITIES, LandingFileError, read_landing_file
from pipeline_helpers import WAREHOUSE_ASSETS, materialize_day, query, using_home


@pytest.fixture(scope="module")
def crafted_home(tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("crafted")) as home:
        write_crafted_day(home)
        materialize_day(DAY, selection=WAREHOUSE_ASSETS)
        yield home


def test_every_broken_record_is_rejected_with_its_reason(crafted_home):
    rejected = set(query("select landing_file, line_no, reason from rejected_events"))
    assert rejected == EXPECTED_REJECTS


def test_staged_plus_rejected_equals_raw_for_every_entity(crafted_home):
    rows = query("select source, entity, raw_lines, staged, rejected from audit_record_counts")
    assert len(rows) == len(LANDING_ENTITIES) - 1  # every entity but imported logs has a file that day
    for source, entity, raw_lines, staged, rejected in rows:
        assert raw_lines == staged + rejected, (source, entity)
    web = next(row for row in rows if row[:2] == ("web", "events"))
    assert web[2:] == (11, 2, 9)


def test_clean_records_become_events_of_one_stitched_person(crafted_home):
    events = query("select event_id, person_id, source from fct_events order by event_id")
    assert [event_id for event_id, _, _ in events] == ["o-1", "r-1", "s-1", "t-1", "w-1", "w-10"]
    # cookie (login), customer (orders, tickets), handle (CRM) and device (registration) are one person
    assert len({person_id for _, person_id, _ in events}) == 1


def test_no_pii_after_staging_and_masked_free_text(crafted_home):
    tables = [row[0] for row in query(
        "select table_name from information_schema.tables where table_schema = 'main'")]
    assert "rejected_events" in tables and "stg_social__engagements" in tables
    for table in tables:
        text = " ".join(str(row) for row in query(f"select * from {table}"))
        for secret in (EMAIL, PHONE, FIRST_NAME, LAST_NAME, IP, "jane_tennis"):
            assert secret not in text, f"{secret!r} found in {table}"
    assert query("select text from stg_social__engagements") == [("write me at <email>",)]
    assert query("select body from stg_crm__tickets") == [("Please call me, <phone>",)]


def test_rematerialising_a_day_replaces_its_rows(crafted_home):
    before = {table: sorted(query(f"select * from {table}")) for table in ("fct_events", "rejected_events")}
    materialize_day(DAY, selection=WAREHOUSE_ASSETS)
    after = {table: sorted(query(f"select * from {table}")) for table in ("fct_events", "rejected_events")}
    assert after == before


def test_a_csv_with_the_wrong_header_names_the_file_line_and_expectation(tmp_path):
    orders = next(entity for entity in LANDING_ENTITIES if entity.table == "crm__orders")
    path = tmp_path / "landing" / "crm" / "orders" / "2026-10-01.csv"
    path.parent.mkdir(parents=True)
    path.write_text("order,customer\no-1,C1\n")
    with pytest.raises(LandingFileError, match=r"2026-10-01\.csv:1: expected the CSV header 'order_id,customer_id"):
        read_landing_file(path, orders, DAY, tmp_path)
