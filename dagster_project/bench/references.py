"""Reference implementations the memory stage is measured against, on the same day's data.

* The DuckDB floor (`duckdb_floor.sql`): staging and segmentation as one hand-written SQL
  script over the landing files, with no orchestration, no intent model, no summaries.
* A straightforward pandas segmentation: the rule of `science/segmentation.py` (30-minute
  sessions, intent filled within a session, a memory per run of one intent) written the way
  one would in pandas, with per-group aggregation of event ids and texts.

Both take the intent as given (the category, or the intents of the events they are handed),
so on the same events they give exactly the memories of `segment_intent_memories`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

FLOOR_SQL = Path(__file__).with_name("duckdb_floor.sql")
SEGMENTATION_MARKER = "-- segmentation"


def floor_statements(landing: Path, day: date) -> tuple[str, str]:
    """The floor script split in its staging and segmentation halves, bound to a landing folder and day."""
    script = FLOOR_SQL.read_text().replace("$landing", str(landing)).replace("$day", day.isoformat())
    staging, segmentation = script.split(SEGMENTATION_MARKER, 1)
    return staging, segmentation


def run_duckdb_floor(landing: Path, day: date) -> int:
    """Stage and segment one landed day in an in-memory DuckDB; returns the memory count."""
    staging, segmentation = floor_statements(landing, day)
    with duckdb.connect() as connection:
        connection.execute(staging)
        connection.execute(segmentation)
        return connection.execute("select count(*) from floor_memories").fetchall()[0][0]


def floor_segment(events: pd.DataFrame) -> int:
    """Only the floor's segmentation half, on given events (event_id, ts, person_id, intent, text, source)."""
    _, segmentation = floor_statements(Path("."), date.today())
    with duckdb.connect() as connection:
        connection.register("given_events", events)
        connection.execute("create temp table floor_events as select * from given_events")
        connection.execute(segmentation)
        return connection.execute("select count(*) from floor_memories").fetchall()[0][0]


def pandas_segment(events: pd.DataFrame, gap_minutes: float = 30) -> pd.DataFrame:
    """One row per memory (person_id, start_ts, end_ts, intent, n_events, sources, event_ids, text)."""
    ordered = events.sort_values(["person_id", "ts", "event_id"], kind="stable").reset_index(drop=True)
    new_person = ordered["person_id"] != ordered["person_id"].shift()
    long_gap = ordered["ts"].diff() > pd.Timedelta(minutes=gap_minutes)
    ordered["session"] = (new_person | long_gap).cumsum()
    by_session = ordered.groupby("session")["intent"]
    ordered["intent"] = by_session.ffill().fillna(ordered.assign(back=by_session.bfill())["back"])
    ordered = ordered[ordered["intent"].notna()]
    new_run = (ordered["session"] != ordered["session"].shift()) | (ordered["intent"] != ordered["intent"].shift())
    ordered = ordered.assign(run=new_run.cumsum())
    return ordered.groupby("run").agg(
        person_id=("person_id", "first"),
        start_ts=("ts", "min"),
        end_ts=("ts", "max"),
        intent=("intent", "first"),
        n_events=("event_id", "size"),
        sources=("source", lambda values: sorted(set(values))),
        event_ids=("event_id", list),
        text=("text", lambda values: " ".join(value for value in values if isinstance(value, str))),
    )
