"""A user's own log with real-like volume through `personas import` and `personas run`.

Twenty days of a generated shop log: daily volume swinging more than 10x (quiet days of
50-200 events, two bursts of 600-700), two days without any event, and one truly broken day
(a third of its rows name objects the items file does not have, so staging rejects them).
The issue measured that such a log yields no persona: the 0.5x-2x-of-yesterday bound and
"at least one row" failed, and one range verdict blocked every day. Now: personas for
every day with data but the broken one, WARN on the bursts, the broken day named with
the command that reruns it.
"""

import csv
import io
import random
from contextlib import redirect_stderr, redirect_stdout
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest
from dagster import DagsterEventType, DagsterInstance

from dagster_project.cli import main
from dagster_project.summary import gate_verdicts
from pipeline_helpers import query

FIRST = date(2026, 9, 1)
DAYS = 20
EMPTY_DAYS = {FIRST + timedelta(days=8), FIRST + timedelta(days=15)}
BURST_DAYS = {FIRST + timedelta(days=11), FIRST + timedelta(days=17)}
BROKEN_DAY = FIRST + timedelta(days=13)
LAST = FIRST + timedelta(days=DAYS - 1)
INTERESTS = {
    "tennis": ["tennis racket pro", "tennis balls tube", "tennis shoes clay", "tennis grip tape", "tennis bag tour"],
    "baking": ["baking oven tray", "baking sourdough starter", "baking flour rye", "baking whisk steel", "baking mould"],
    "camping": ["camping tent dome", "camping stove gas", "camping sleeping bag", "camping lantern led", "camping mat"],
    "chess": ["chess board walnut", "chess clock digital", "chess pieces staunton", "chess openings book", "chess set"],
}
PEOPLE = 36  # a third of them per interest of the first three
CHESS_PLAYERS = 2  # and two more people who play chess only: too few for a persona


def daily_volume(day: date, rng: random.Random) -> int:
    """Quiet days of 50-200 events, bursts of 600-700; the first day is busy enough for a first fit."""
    if day in EMPTY_DAYS:
        return 0
    if day in BURST_DAYS:
        return rng.randint(600, 700)
    return 200 if day == FIRST else rng.randint(50, 200)


def write_log(folder) -> tuple:
    """events.csv and items.csv of the shop; returns their paths and the planned volume per day."""
    rng = random.Random(15)
    items = folder / "items.csv"
    with items.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object_id", "title", "categories"])
        for interest, titles in INTERESTS.items():
            writer.writerows((f"{interest}-{n}", title, interest) for n, title in enumerate(titles))
    events = folder / "events.csv"
    volumes = {}
    with events.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "timestamp", "object_id", "action"])
        for offset in range(DAYS):
            day = FIRST + timedelta(days=offset)
            volumes[day] = daily_volume(day, rng)
            written = 0
            while written < volumes[day]:  # sessions of 3-6 views of one interest, a few minutes apart
                person = rng.randrange(PEOPLE + CHESS_PLAYERS)
                interest = "chess" if person >= PEOPLE else list(INTERESTS)[person % 3]
                start = datetime.combine(day, datetime.min.time()) + timedelta(minutes=rng.randrange(23 * 60))
                for step in range(min(rng.randint(3, 6), volumes[day] - written)):
                    broken = day == BROKEN_DAY and rng.random() < 0.35
                    object_id = f"gone-{rng.randrange(99)}" if broken else f"{interest}-{rng.randrange(5)}"
                    stamp = (start + timedelta(minutes=2 * step)).isoformat() + "Z"
                    writer.writerow([f"customer-{person:03d}", stamp, object_id, "view"])
                    written += 1
    return events, items, volumes


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    from pipeline_helpers import using_home

    with using_home(tmp_path_factory.mktemp("real-like")) as home:
        events, items, volumes = write_log(home)
        assert main(["import", "--events", str(events), "--items", str(items), "--source", "shop"]) == 0
        with DagsterInstance.get() as instance:
            before = {run.run_id for run in instance.get_runs()}
        output = io.StringIO()
        with redirect_stdout(output), redirect_stderr(output):
            code = main(["run", "--start", FIRST.isoformat(), "--end", LAST.isoformat()])
        with DagsterInstance.get() as instance:
            runs = [run for run in instance.get_runs() if run.run_id not in before]
            evaluations = [
                record.event_log_entry.dagster_event.event_specific_data
                for run in runs
                for record in instance.get_records_for_run(
                    run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
            ]
        yield home, volumes, code, evaluations, output.getvalue()


def test_the_log_is_as_bursty_as_the_real_one(imported_run):
    """The measured failure first: under the old 0.5x-2x-of-yesterday bound and 'at least one row' it fails."""
    _, volumes, _, _, _ = imported_run
    days = sorted(volumes)
    assert {day for day in days if volumes[day] == 0} == EMPTY_DAYS
    quiet = min(volumes[day] for day in days if volumes[day])
    assert max(volumes.values()) >= 10 * quiet
    jumps = [day for previous, day in pairwise(days) if volumes[previous] and volumes[day] > 2 * volumes[previous]]
    assert set(jumps) >= BURST_DAYS


def test_personas_for_every_day_with_data_but_the_broken_one(imported_run):
    _, volumes, code, _, output = imported_run
    assert code == 1, output  # a day is blocked: the run says so, and how to rerun it
    assert f"Blocked by a gate: {BROKEN_DAY}" in output and "memories and personas not rebuilt" in output
    assert f"fix the day's data, then rerun: personas run --start {BROKEN_DAY}\n" in output
    days_with_data = {day for day, volume in volumes.items() if volume}
    persona_days = {row[0] for row in query("select distinct event_date from personas")}
    memory_days = {row[0] for row in query("select distinct event_date from intent_memories")}
    assert days_with_data - {BROKEN_DAY} <= memory_days
    assert days_with_data - {BROKEN_DAY} <= persona_days
    assert BROKEN_DAY not in persona_days | memory_days
    # the broken day's rows are all accounted for: staged or rejected with a reason
    [(raw, staged, rejected)] = query(
        "select sum(raw_lines), sum(staged), sum(rejected) from audit_record_counts where event_date = ?", [BROKEN_DAY])
    assert raw == staged + rejected and rejected > 0.2 * raw


def test_the_gates_warn_on_the_bursts_and_block_only_the_broken_day(imported_run):
    _, _, _, evaluations, _ = imported_run
    [audit] = [folded for folded in gate_verdicts(evaluations) if folded.check_name == "gx_audit_record_counts"]
    assert audit.metadata["failed_partitions"].value == BROKEN_DAY.isoformat()
    assert audit.metadata["rerun"].value == f"personas run --start {BROKEN_DAY}"
    warned = set(audit.metadata["warned_partitions"].value.split(", "))
    assert {day.isoformat() for day in BURST_DAYS} <= warned
    assert not {day.isoformat() for day in EMPTY_DAYS} & warned  # a sparse source may be silent
    blocking = [e for e in evaluations if not e.passed and e.severity.value == "ERROR"]
    assert [e.check_name for e in blocking] == ["gx_audit_record_counts"]


def test_every_persona_is_shared_by_five_people_and_the_run_prints_the_catalogue(imported_run):
    """A persona is a group's pattern: the two chess players' memories form a tight cluster of their own; before
    the support rule (`min_persona_people`) this log had 17 persona-days of fewer than 5 people. On a real
    120-day log of 52 people the k search sat at its ceiling, 23-24 personas a day, 39% of persona-days under 5
    people. The rule is on the k-means clusters; no later step took a persona under 5 people on this log."""
    _, _, _, _, output = imported_run
    assert query("select event_date, persona_id, n_users from personas where n_users < 5") == []
    [(last,)] = query("select max(event_date) from personas")
    assert f"Persona catalogue as of {last}:" in output and "Champion model: version" in output
