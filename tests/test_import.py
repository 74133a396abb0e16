"""Bring your own log: a small hand-written CSV log goes end to end; malformed files fail clearly."""

import csv
import os
import random
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dagster_project.cli import main
from dagster_project.ingest.importer import ImportFileError, import_log
from dagster_project.ingest.landing import LANDING_ENTITIES, read_landing_file
from dagster_project.partitions import first_partition_day
from dagster_project.paths import warehouse_path
from dagster_project.privacy.suppression import LINE_NODES, pii_salt
from pipeline_helpers import WAREHOUSE_ASSETS, materialize_day, query, using_home

NETWORK_SPY = Path(__file__).parent / "network_spy"  # a sitecustomize that logs every outside lookup and connection

DAY = date(2026, 9, 1)
LOG_DAY = date(2019, 9, 1)  # years before the other homes' data (and the partitions' old fixed start, 2026-01-01)
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
                    start = datetime(LOG_DAY.year, LOG_DAY.month, LOG_DAY.day + day, 8 + 4 * session, person)
                    for step in range(3):
                        ts = start + timedelta(minutes=2 * step)
                        stamp = ts.isoformat() + "Z" if step % 2 else str(int((ts - datetime(1970, 1, 1)).total_seconds()))
                        writer.writerow([f"user{person}@shop.example", stamp, f"{group}{rng.randrange(10)}", "view"])
        writer.writerow(["user1@shop.example", "not a time", "t1", "view"])
        writer.writerow(["user2@shop.example", f"{LOG_DAY}T10:00:00Z", "zz9", "view"])
    return events, items


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    """`personas import` of a 2019 log, then `personas run` over its days, each its own process as typed in a shell
    (stdout not a terminal: plain progress lines); the home and the run's stdout. Every Python process of the
    two commands (dbt's and MLflow's workers too) logs its outside lookups and connections to `network.log`."""
    home = tmp_path_factory.mktemp("imported")
    events, items = _write_log(home)
    # As in a user's shell: MLflow sends nothing while it sees pytest's or a CI's variable.
    shell = {name: value for name, value in os.environ.items() if name not in ("PYTEST_CURRENT_TEST", "CI")}
    environment = {**shell, "PERSONAS_NETWORK_LOG": str(home / "network.log"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(NETWORK_SPY), os.environ.get("PYTHONPATH")]))}

    def personas(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dagster_project.cli", *args, "--home", str(home)],
                              capture_output=True, text=True, timeout=600, env=environment)

    imported = personas("import", "--events", str(events), "--items", str(items), "--source", "shop")
    # the row with an unparseable timestamp could never run: rejected at import, not landed
    assert imported.returncode == 0, imported.stderr
    assert "Read 434 rows" in imported.stdout and "landed 433" in imported.stdout
    assert "Rejected at import 1 rows no run could take (1 unparseable_timestamp)" in imported.stdout
    ran = personas("run", "--start", LOG_DAY.isoformat(), "--end", (LOG_DAY + timedelta(days=1)).isoformat())
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with using_home(home):
        yield home, ran.stdout


@pytest.fixture(scope="module")
def imported_home(imported_run):
    return imported_run[0]


def test_a_log_years_before_the_other_data_runs_and_the_run_prints_progress_not_dagster_events(imported_run):
    home, stdout = imported_run
    assert first_partition_day(home) == LOG_DAY
    lines = stdout.splitlines()
    verdict = next(index for index, line in enumerate(lines) if line.startswith("Run "))
    assert lines[verdict].startswith(f"Run {LOG_DAY}..{LOG_DAY + timedelta(days=1)} succeeded")
    progress = lines[:verdict]
    steps = [line for line in progress if line.lstrip().startswith("[")]
    assert progress[0].startswith(f"{LOG_DAY}..{LOG_DAY + timedelta(days=1)}: {len(steps)} steps (log: ")
    assert len(progress) == len(steps) + 1 and len(progress) <= 30  # one line per step; no dbt or Dagster stream
    assert any(" persona_model done" in line for line in steps)
    [log] = (home / "logs").glob("*-run-*.log")
    log_text = log.read_text()
    assert log_text.count("STEP_SUCCESS") == len(steps) and "dbt build" in log_text


def test_import_and_run_call_no_one_outside_the_machine(imported_home):
    """dbt and MLflow send usage events unless told not to (dbt's collector, MLflow's telemetry and its settings)."""
    log = imported_home / "network.log"
    assert not log.exists(), log.read_text()


def test_an_imported_log_becomes_two_personas_with_fitting_labels(imported_home):
    personas = query("select persona_id, label, evidence_memory_ids from personas where event_date = ?",
                     [LOG_DAY + timedelta(days=1)])
    assert len(personas) == 2
    labels = sorted(label.lower() for _, label, _ in personas)
    assert "baking" in labels[0] and "tennis" in labels[1]
    for _, label, evidence in personas:
        texts = query("select text from intent_memories where list_contains(?, memory_id)", [evidence])
        assert texts and all(("tennis" in label.lower()) == ("tennis" in text.lower()) for (text,) in texts)


def test_imported_events_keep_their_source_and_a_hashed_person(imported_home):
    assert query("select distinct source from fct_events") == [("shop",)]
    assert query("select count(distinct person_id) from fct_events") == [(24,)]
    assert query("select count(*) from fct_events where person_id like '%@%'") == [(0,)]


def test_bad_rows_are_rejected_with_their_origin(imported_home):
    rejected = query("select reason, raw from rejected_events order by reason")
    assert [reason for reason, _ in rejected] == ["unknown_object"]
    assert "events.csv:435" in rejected[0][1] and "@shop.example" not in rejected[0][1]
    kept = (imported_home / "import_rejects").glob("shop-*.csv")
    assert [path.read_text().splitlines()[1].split(",")[:2] for path in kept] == [
        ["events.csv:434", "unparseable_timestamp"]
    ]


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


NOW = datetime(2026, 12, 1, 12)


def _write_csv(path, header, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _landed(home, day="2026-09-01"):
    """The parsed lines of a landing day file, as the raw load reads them."""
    entity = next(entity for entity in LANDING_ENTITIES if entity.source == "import")
    path = home / "landing" / "import" / "events" / f"{day}.csv"
    return read_landing_file(path, entity, date.fromisoformat(day), home)


@pytest.fixture
def items(tmp_path):
    return _write_csv(tmp_path / "items.csv", ["object_id", "title", "categories"],
                      [("t1", "Tennis racket\nwith two lines", "tennis"), ("b1", "Baking tin", "baking")])


def test_unix_seconds_milliseconds_and_microseconds_are_told_apart_by_magnitude(tmp_path, items):
    moment = datetime(2026, 9, 1, 10, 30)
    seconds = int((moment - datetime(1970, 1, 1)).total_seconds())
    events = _write_csv(tmp_path / "events.csv", ["person_id", "timestamp", "object_id", "action"],
                        [("p1", str(seconds), "t1", "view"), ("p1", str(seconds * 1000 + 250), "t1", "view"),
                         ("p1", str(seconds * 1_000_000), "t1", "view"), ("p1", f"{seconds}.5", "t1", "view"),
                         ("p1", "2026-09-01", "t1", "view")])
    report = import_log(tmp_path, events, items, source="shop", now=NOW)
    assert report.days == {"2026-09-01": 5} and report.rejected == {}
    assert _landed(tmp_path)["ts"].to_list() == ["2026-09-01T10:30:00.000Z", "2026-09-01T10:30:00.250Z",
                                                 "2026-09-01T10:30:00.000Z", "2026-09-01T10:30:00.500Z",
                                                 "2026-09-01T00:00:00.000Z"]


def test_rows_no_run_could_take_are_rejected_at_import_counted_and_kept_and_old_rows_move_the_start(
        tmp_path, items, capsys):
    events = _write_csv(tmp_path / "events.csv", ["person_id", "timestamp", "object_id", "action"], [
        ("USER001", "2026-09-01T10:00:00Z", "t1", "view"),   # 2 lands
        ("USER001", "tomorrow-ish", "t1", "view"),           # 3 unparseable
        ("USER001", "1999-05-01T10:00:00Z", "t1", "view"),   # 4 lands, and moves the first partition back
        ("USER001", "2099-01-01T00:00:00Z", "b1", "view"),   # 5 future
        ("USER001", "4102444800000", "b1", "view"),          # 6 future, in milliseconds (2100-01-01)
        ("USER001", "", "b1", "view"),                       # 7 no timestamp at all
    ])
    with using_home(tmp_path / "home") as home:
        assert main(["import", "--events", str(events), "--items", str(items), "--source", "shop"]) == 0
        report = import_log(home, events, items, source="shop")  # the same file again: the same batch
    out = capsys.readouterr().out
    assert report.rows == report.landed + sum(report.rejected.values()) == 6
    assert report.days == {"1999-05-01": 1, "2026-09-01": 1}
    assert first_partition_day(home) == date(1999, 5, 1)
    assert report.rejected == {"future_timestamp": 2, "unparseable_timestamp": 2}
    assert "Rejected at import 4 rows" in out and str(report.rejects_file) in out
    kept = report.rejects_file.read_text()
    assert [line.split(",")[:2] for line in kept.splitlines()[1:]] == [
        ["events.csv:3", "unparseable_timestamp"], ["events.csv:5", "future_timestamp"],
        ["events.csv:6", "future_timestamp"], ["events.csv:7", "unparseable_timestamp"]]
    assert "USER001" not in kept


def test_imports_of_one_source_add_up_and_replace_drops_the_earlier_ones(tmp_path, items):
    header = ["person_id", "timestamp", "object_id", "action"]
    first = _write_csv(tmp_path / "first.csv", header,
                       [("p1", f"2026-09-01T10:0{n}:00Z", "t1", "view") for n in range(5)])
    second = _write_csv(tmp_path / "second.csv", header,
                        [("p2", "2026-09-01T11:00:00Z", "b1", "view"), ("p2", "2026-09-02T11:00:00Z", "b1", "view")])
    import_log(tmp_path, first, items, source="shop")
    import_log(tmp_path, second, items, source="shop")
    import_log(tmp_path, first, items, source="shop")  # re-importing a file replaces only its own lines
    assert sorted(_landed(tmp_path)["person_id"].to_list()) == ["p1"] * 5 + ["p2"]
    report = import_log(tmp_path, first, items, source="shop", replace=True)
    assert _landed(tmp_path)["person_id"].to_list() == ["p1"] * 5
    assert _landed(tmp_path, "2026-09-02").is_empty() and report.replaced_days == ["2026-09-02"]


def test_quoted_newlines_land_one_line_per_row_and_origins_count_physical_lines(tmp_path, items):
    events = _write_csv(tmp_path / "events.csv", ["person_id", "timestamp", "object_id", "action", "note"], [
        ("p1", "2026-09-01T10:00:00Z", "t1", "view", "a note\nover\nthree lines"),  # lines 2-4
        ("p1", "2026-09-01T10:01:00Z", "t1", "view", ""),                           # line 5
    ])
    import_log(tmp_path, events, items, source="shop")
    landed = _landed(tmp_path)
    assert landed["malformed"].to_list() == [False, False]
    assert landed["origin"].to_list() == ["events.csv:2", "events.csv:5"]
    assert landed["title"].to_list() == ["Tennis racket with two lines"] * 2


MIXED_FORMS = [  # (timestamp as written, as landed); the last two can never parse
    ("2026-09-01 11:00:00", "2026-09-01T11:00:00.000Z"),
    ("2026-09-01T10:00:00Z", "2026-09-01T10:00:00.000Z"),
    ("2026-09-01T12:00:00+02:00", "2026-09-01T10:00:00.000Z"),
    ("2026-09-01T12:00:00.250+0200", "2026-09-01T10:00:00.250Z"),
    ("2026-09-01 09:30", "2026-09-01T09:30:00.000Z"),
    ("2026-09-01", "2026-09-01T00:00:00.000Z"),
    ("1788256800", "2026-09-01T10:00:00.000Z"),
    ("2026-09-31T10:00:00Z", None),
    ("11:00 on the first", None),
]


@pytest.mark.parametrize("order", [1, -1], ids=["naive-first", "unparseable-first"])
def test_a_file_mixing_timestamp_forms_lands_every_row_that_parses(tmp_path, items, order):
    """Whatever form comes first, every other form still parses: only the truly unparseable rows are rejected."""
    forms = MIXED_FORMS[::order]
    events = _write_csv(tmp_path / "events.csv", ["person_id", "timestamp", "object_id", "action"],
                        [("p1", written, "t1", "view") for written, _ in forms])
    report = import_log(tmp_path, events, items, source="shop", now=NOW)
    assert report.days == {"2026-09-01": 7} and report.rejected == {"unparseable_timestamp": 2}
    assert _landed(tmp_path)["ts"].to_list() == [landed for _, landed in forms if landed]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_extra_event_columns_never_stand_in_for_the_items_file(tmp_path, items, suffix):
    header = ["person_id", "timestamp", "object_id", "action", "title", "category", "categories", "object_known",
              "line"]
    rows = [("p1", "2026-09-01T10:00:00Z", "t1", "view", "Fake title", "fake", "fake", "false", "99"),
            ("p1", "2026-09-01T10:01:00Z", "zz9", "view", "Ghost item", "ghost", "ghost", "true", "98")]
    events = tmp_path / f"events.{suffix}"
    if suffix == "csv":
        _write_csv(events, header, rows)
    else:
        pl.DataFrame(rows, schema=header, orient="row").write_parquet(events)
    report = import_log(tmp_path, events, items, source="shop", now=NOW)
    assert report.unknown_objects == 1
    landed = _landed(tmp_path)
    assert landed.select("title", "category", "object_known").rows() == [
        ("Tennis racket with two lines", "tennis", "true"), (None, None, "false")]
    assert landed["origin"].to_list() == (["events.csv:2", "events.csv:3"] if suffix == "csv"
                                          else ["events.parquet:1", "events.parquet:2"])


def test_a_built_in_source_name_is_refused_before_any_work(tmp_path, capsys):
    with using_home(tmp_path / "home"):
        code = main(["import", "--events", str(tmp_path / "absent.csv"), "--items", str(tmp_path / "absent.csv"),
                     "--source", "web"])
    assert code == 2
    assert "--source 'web' is a built-in source (crm, iot, social, web)" in capsys.readouterr().err
    assert not (tmp_path / "home" / "landing" / "import").exists()


@pytest.fixture(scope="module")
def cased_home(tmp_path_factory):
    """Two imports of one source on one day, with ids differing only in case, through the real raw load and dbt."""
    with using_home(tmp_path_factory.mktemp("cased")) as home:
        items = _write_csv(home / "items.csv", ["object_id", "title", "categories"], ITEMS)
        first = _write_csv(home / "first.csv", ["person_id", "timestamp", "object_id", "action"], [
            ("USER001", "2026-09-01T10:00:00Z", "t1", "view"), ("user001", "2026-09-01T10:05:00Z", "t2", "view"),
            ("USER001", "2026-09-01T10:06:00Z", "zz9", "view")])  # object missing: rejected by staging
        second = _write_csv(home / "second.csv", ["person_id", "timestamp", "object_id", "action"], [
            (" USER001 ", "2026-09-01T12:00:00Z", "b1", "view"),
            ("USER001", "not a time", "b1", "view")])  # rejected at import, with the person id hashed
        import_log(home, first, items, source="shop")
        import_log(home, second, items, source="shop")
        materialize_day(DAY, selection=WAREHOUSE_ASSETS)
        yield home


def test_ids_differing_in_case_are_two_people_and_both_imports_are_staged(cased_home):
    events = query("select person_hash, origin from stg_import__events order by origin")
    assert [origin for _, origin in events] == ["first.csv:2", "first.csv:3", "second.csv:2"]
    assert events[0][0] != events[1][0] and events[0][0] == events[2][0]  # ' USER001 ' is USER001, trimmed
    assert query("select count(*), count(distinct person_id) from fct_events") == [(3, 2)]


def test_a_rejected_imported_line_carries_the_person_id_hashed(cased_home):
    (raw,) = [raw for (raw,) in query("select raw from rejected_events where reason = 'unknown_object'")]
    assert "USER001" not in raw and "first.csv:4" in raw
    [(person_hash,)] = query("select person_hash from stg_import__events where origin = 'first.csv:2'")
    assert raw.split(",")[1] == person_hash
    assert query("select count(*) from audit_record_counts where raw_lines <> staged + rejected") == [(0,)]


def test_the_python_and_sql_person_hashes_of_an_imported_log_agree(cased_home):
    """Import rejects and the erasure suppression list hash the person id as staging does."""
    [(staged_hash,)] = query("select person_hash from stg_import__events where origin = 'first.csv:2'")
    [rejects] = (cased_home / "import_rejects").glob("shop-*.csv")
    [kept] = pl.read_csv(rejects, infer_schema=False).rows(named=True)
    assert kept["origin"] == "second.csv:3" and kept["person_hash"] == staged_hash
    with duckdb.connect(str(warehouse_path(cased_home)), read_only=True) as connection:
        nodes = connection.execute(
            f"select distinct unnest({LINE_NODES['import__events']}) from raw.import__events",
            {"salt": pii_salt()}).fetchall()
    stitched = query("select distinct identifier from dim_person_identifiers where identifier like 'imported:%'")
    assert sorted(nodes) == sorted(stitched) and len(nodes) == 2
