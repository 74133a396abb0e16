"""Bring your own log: a small hand-written CSV log goes end to end; malformed files fail clearly."""

import csv
import random
from datetime import date, datetime, timedelta

import pytest

from dagster_project.cli import main
from dagster_project.ingest.importer import ImportFileError, import_log
from pipeline_helpers import materialize_range, query, using_home

DAY = date(2026, 9, 1)
TENNIS = ["Wilson tennis racket", "Tennis balls tube", "Tennis string reel", "Tennis grip tape",
          "Clay court tennis shoes", "Tennis ball hopper", "Wimbledon tennis towel", "Tennis racket bag",
          "Tennis elbow strap", "Tennis practice net"]
BAKING = ["Sourdough baking starter", "Bread baking tin", "Rye baking flour", "Baking proofing basket",
          "Baking stone slab", "Pastry baking mat", "Cake baking tin", "Baking dough scraper",
          "Baking oven thermometer", "Baguette baking tray"]
ITEMS = ([(f"t{n}", title, "tennis|sport") for n, title in enumerate(TENNIS)]
         + [(f"b{n}", title, "baking kitchen") for n, title in enumerate(BAKING)])


def _write_log(folder):
    """Two groups of people with disjoint interests, three sessions a day for two days."""
    rng = random.Random(3)
    events = folder / "events.csv"
    items = folder / "items.csv"
    with items.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object_id", "title", "categories"])
        writer.writerows(ITEMS)
    with events.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "timestamp", "object_id", "action"])
        for person in range(24):
            group = "t" if person % 2 else "b"
            for day in range(2):
                for session in range(3):
                    start = datetime(2026, 9, 1 + day, 8 + 4 * session, person)
                    for step in range(3):
                        ts = start + timedelta(minutes=2 * step)
                        stamp = ts.isoformat() + "Z" if step % 2 else str(int((ts - datetime(1970, 1, 1)).total_seconds()))
                        writer.writerow([f"user{person}@shop.example", stamp, f"{group}{rng.randrange(10)}", "view"])
        writer.writerow(["user1@shop.example", "not a time", "t1", "view"])
        writer.writerow(["user2@shop.example", "2026-09-01T10:00:00Z", "zz9", "view"])
    return events, items


@pytest.fixture(scope="module")
def imported_home(tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("imported")) as home:
        events, items = _write_log(home)
        report = import_log(home, events, items, source="shop")
        assert report["days"] == {"2026-09-01": 218, "2026-09-02": 216}
        materialize_range(DAY, DAY + timedelta(days=1))
        yield home


def test_an_imported_log_becomes_two_personas_with_fitting_labels(imported_home):
    personas = query("select persona_id, label, evidence_memory_ids from personas where event_date = ?",
                     [DAY + timedelta(days=1)])
    assert len(personas) == 2
    labels = sorted(label for _, label, _ in personas)
    assert "baking" in labels[0] and "tennis" in labels[1]
    for _, label, evidence in personas:
        texts = query("select text from intent_memories where list_contains(?, memory_id)", [evidence])
        assert texts and all(("tennis" in label) == ("Tennis" in text or "tennis" in text) for (text,) in texts)


def test_imported_events_keep_their_source_and_a_hashed_person(imported_home):
    assert query("select distinct source from fct_events") == [("shop",)]
    assert query("select count(distinct person_id) from fct_events") == [(24,)]
    assert query("select count(*) from fct_events where person_id like '%@%'") == [(0,)]


def test_bad_rows_are_rejected_with_their_origin(imported_home):
    rejected = query("select reason, raw from rejected_events order by reason")
    assert [reason for reason, _ in rejected] == ["unknown_object", "unparseable_timestamp"]
    assert all("events.csv:" in raw for _, raw in rejected)
    assert "events.csv:435" in rejected[0][1] and "events.csv:434" in rejected[1][1]
    assert all("@shop.example" not in raw for _, raw in rejected)


def test_a_missing_column_names_the_file_and_the_expected_columns(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("person,timestamp,object_id,action\np1,2026-09-01T10:00:00Z,t1,view\n")
    items = tmp_path / "items.csv"
    items.write_text("object_id,title,categories\nt1,Racket,tennis\n")
    with pytest.raises(ImportFileError, match=r"events\.csv:1: missing column\(s\) person_id; expected columns "
                                              r"person_id, timestamp, object_id, action"):
        import_log(tmp_path, events, items)


def test_the_cli_reports_a_malformed_items_file(tmp_path, capsys):
    events = tmp_path / "events.csv"
    events.write_text("person_id,timestamp,object_id,action\np1,2026-09-01T10:00:00Z,t1,view\n")
    items = tmp_path / "items.parquet"
    items.write_bytes(b"not parquet")
    with using_home(tmp_path / "home"):
        code = main(["import", "--events", str(events), "--items", str(tmp_path / "missing.csv")])
    assert code == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
