"""Builders of small synthetic inputs for the science tests."""

import datetime as dt

import numpy as np
import polars as pl

DAY = dt.date(2026, 10, 1)
EVENT_SCHEMA = {
    "event_id": pl.String,
    "person_id": pl.String,
    "event_date": pl.Date,
    "ts": pl.Datetime("us", "UTC"),
    "source": pl.String,
    "action": pl.String,
    "object_id": pl.String,
    "category": pl.String,
    "text": pl.String,
}
TENNIS_WORDS = ["tennis", "racket", "wimbledon", "strings", "serve", "court"]
COOKING_WORDS = ["pasta", "skillet", "recipe", "oven", "sourdough", "knife"]


def make_events(rows: list[tuple]) -> pl.DataFrame:
    """Rows (event_id, person_id, minutes after 09:00 on DAY, source, action, object_id,
    category, text) -> an fct_events-shaped frame."""
    start = dt.datetime.combine(DAY, dt.time(9), tzinfo=dt.UTC)
    records = [
        {
            "event_id": event_id,
            "person_id": person_id,
            "ts": start + dt.timedelta(minutes=minutes),
            "source": source,
            "action": action,
            "object_id": object_id,
            "category": category,
            "text": text,
        }
        for event_id, person_id, minutes, source, action, object_id, category, text in rows
    ]
    frame = pl.DataFrame(
        records, schema={k: v for k, v in EVENT_SCHEMA.items() if k != "event_date"}
    )
    return frame.with_columns(pl.col("ts").dt.date().alias("event_date")).select(list(EVENT_SCHEMA))


def two_persona_events() -> pl.DataFrame:
    """40 people, each in one of two planted personas with disjoint vocabularies.

    Every person has six sessions a day apart; a session is a page view with a
    category plus a search and a social like (no category) in the persona's words.
    """
    rng = np.random.default_rng(7)
    rows = []
    for person in range(40):
        persona, words, category = (
            ("tennis", TENNIS_WORDS, "tennis_gear")
            if person % 2 == 0
            else ("cooking", COOKING_WORDS, "kitchen")
        )
        for session in range(6):
            minute = session * 24 * 60 + int(rng.integers(0, 600))
            picks = [" ".join(rng.choice(words, 2, replace=False)) for _ in range(3)]
            prefix = f"{persona}-{person}-{session}"
            rows += [
                (
                    f"{prefix}-a",
                    f"p{person:02d}",
                    minute,
                    "web",
                    "page_view",
                    f"I-{persona}-{rng.integers(8)}",
                    category,
                    picks[0].title(),
                ),
                (
                    f"{prefix}-b",
                    f"p{person:02d}",
                    minute + 2,
                    "web",
                    "search",
                    None,
                    None,
                    picks[1],
                ),
                (
                    f"{prefix}-c",
                    f"p{person:02d}",
                    minute + 4,
                    "social",
                    "like",
                    f"P-{persona}-{rng.integers(8)}",
                    None,
                    f"Loving {picks[2]}",
                ),
            ]
    return make_events(rows)
