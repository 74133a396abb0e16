"""The POST path: a person's posted events become intent memories, persona assignments and new weights.

Pure functions of a `Snapshot` and frames (no DuckDB, no MLflow, no I/O), built from the
pipeline's own science so a posted event is treated as the daily run would treat it.
"""

from __future__ import annotations

import hashlib

import polars as pl

from dagster_project.api.schemas import PostedEvent
from dagster_project.api.snapshot import Champion, Snapshot
from dagster_project.science.clustering import assign
from dagster_project.science.intent_families import apply_intent_families
from dagster_project.science.labelling import person_personas
from dagster_project.science.segmentation import assign_intents, segment_intent_memories

EVENT_SCHEMA = {
    "event_id": pl.String, "person_id": pl.String, "event_date": pl.Date, "ts": pl.Datetime("us"),
    "source": pl.String, "action": pl.String, "object_id": pl.String, "category": pl.String, "text": pl.String,
}
PERSON_PERSONAS_INPUT = ("memory_id", "person_id", "persona_id", "weight", "distance", "text")


def _derived_event_id(person_id: str, event: PostedEvent) -> str:
    """An id from the event's content, so posting the same event twice is recognised as one event."""
    key = "|".join([person_id, event.timestamp.isoformat(), event.source, event.action,
                    event.object_id or "", event.category or "", event.text or ""])
    return "api_" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def events_frame(person_id: str, events: list[PostedEvent]) -> pl.DataFrame:
    """The posted events as `fct_events` rows of the person."""
    return pl.DataFrame(
        {
            "event_id": [event.event_id or _derived_event_id(person_id, event) for event in events],
            "person_id": [person_id] * len(events),
            "event_date": [event.timestamp.date() for event in events],
            "ts": [event.timestamp for event in events],
            "source": [event.source for event in events],
            "action": [event.action for event in events],
            "object_id": [event.object_id for event in events],
            "category": [event.category for event in events],
            "text": [event.text for event in events],
        },
        schema=EVENT_SCHEMA,
    )


def posted_memories(snapshot: Snapshot, events: pl.DataFrame) -> pl.DataFrame:
    """Intent memories of a person's posted events, cut as `science.daily.memories_for_day` cuts them.

    The intent model and the intent families are the ones fitted on the model date's events
    (what the pipeline fitted for that day), not refitted on a handful of posted events.
    """
    with_intents = apply_intent_families(assign_intents(events, snapshot.intent_model), snapshot.intent_families)
    return segment_intent_memories(with_intents, gap_minutes=snapshot.champion.settings.gap_minutes)


def assign_to_personas(champion: Champion, memories: pl.DataFrame) -> pl.DataFrame:
    """Each memory's nearest persona and cosine distance under the champion.

    The champion's vectoriser and centroids composed as its pyfunc `predict` composes them,
    but on the polars frame: the pandas round trip would cost a few milliseconds a request.
    """
    if memories.is_empty():
        return memories.with_columns(persona_id=pl.lit(None, pl.Int64), distance=pl.lit(None, pl.Float64))
    model = champion.model
    nearest, distance = assign(model.vectorizer.transform(memories), model.centroids)
    return memories.with_columns(
        persona_id=pl.Series(model.persona_ids[nearest], dtype=pl.Int64),
        distance=pl.Series(distance, dtype=pl.Float64),
    )


def merged_personas(snapshot: Snapshot, window: pl.DataFrame, posted: pl.DataFrame) -> pl.DataFrame:
    """The person's personas once the posted memories join the memories of the model date's window.

    Merge rule: the pipeline's own `person_personas` runs again over the person's window
    memories (persona and distance as the champion assigned them that day, recency weights
    as `recency_weights` gave them) plus the posted memories, each of which weighs as much
    as a memory of the window's most recent days. A persona's weight is thus its
    recency-weighted share of all the person's memories, top 5 kept, shares under 0.1
    dropped and the rest renormalised; 20 events of a new interest move a person with few
    recent memories a lot and a person with many only a little. Evidence and the
    person-specific label come out of the same function, so a posted memory can become
    evidence. A posted memory the warehouse already holds (same person, same first event,
    so the same memory id) is not counted twice.
    """
    memories = pl.concat([
        window.select(PERSON_PERSONAS_INPUT),
        posted.join(window.select("memory_id"), on="memory_id", how="anti")
        .with_columns(weight=pl.lit(snapshot.posted_memory_weight))
        .select(PERSON_PERSONAS_INPUT),
    ])
    return person_personas(memories, snapshot.persona_terms)
