"""What each event type says: the payloads, built from the frames the pipeline and the API already hold."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from dagster_project.science.drift import SHARE_MOVE, persona_details
from dagster_project.webhooks.delivery import enqueue_in_background
from dagster_project.webhooks.store import idempotency_key, store_path

PERSONA_CHANGED = "persona.changed"
PERSON_PERSONAS_CHANGED = "person.personas_changed"
DRIFT_BREACHED = "drift.breached"
NO_UPTAKES = pl.DataFrame(schema={"person_id": pl.String, "persona_id": pl.Int64})


def persona_changed_payload(day: dt.date, previous: pl.DataFrame, current: pl.DataFrame,
                            share_move: float = SHARE_MOVE, lineage: pl.DataFrame | None = None) -> dict | None:
    """Personas born, retired, split, merged, gone dormant, relabelled or whose share moved by more than
    `share_move` (relative) on `day`.

    previous, current: persona_id, label, share of the day before and of the day; lineage: the
    day's `persona_lineage` rows (persona_id, event), whose statuses win over a comparison of
    the two days. None when nothing moved or there is no day before to compare with.
    """
    if previous.is_empty():
        return None
    details = persona_details(previous, current, {}, NO_UPTAKES, lineage)
    moved = details.filter(
        (pl.col("status") != "kept") | pl.col("label_changed") | (pl.col("share_change").abs() > share_move)
    )
    if moved.is_empty():
        return None
    columns = ["persona_id", "status", "label_yesterday", "label_today", "share_yesterday", "share_today"]
    return {"model_date": day.isoformat(), "personas": moved.select(columns).to_dicts()}


def drift_breached_payload(day: dt.date, drift: pl.DataFrame) -> dict | None:
    """The breached metrics of `day` (drift: `persona_drift` rows of the day), None without a breach."""
    breached = drift.filter("breached").select("metric", "value", "threshold")
    return {"model_date": day.isoformat(), "metrics": breached.to_dicts()} if breached.height else None


def person_personas_changed(home: Path, person_id: str, as_of: dt.date, before: pl.DataFrame | None,
                            after: pl.DataFrame) -> str | None:
    """Announce `person.personas_changed` when posted events changed a person's personas or their order; its key.

    before, after: the person's persona_id, weight (and label) rows. A thread of the calling
    process writes the outbox and delivers, so the API answers without a write or a wait.
    """
    def ranked(frame: pl.DataFrame | None) -> list[int]:
        return [] if frame is None else frame.sort("weight", "persona_id", descending=[True, False])["persona_id"].to_list()

    if ranked(before) == ranked(after) or not store_path(home).exists():  # no change, or nobody ever subscribed
        return None
    # `changed_at` moves forward, so a person whose personas go A -> B -> A is announced twice, not once;
    # retries of one announcement still share its key.
    payload = {
        "person_id": person_id,
        "as_of": as_of.isoformat(),
        "changed_at": dt.datetime.now(dt.UTC).isoformat(),
        "previous_personas": ranked(before),
        "personas": after.select("persona_id", "weight", *(["label"] if "label" in after.columns else [])).to_dicts(),
    }
    enqueue_in_background(home, PERSON_PERSONAS_CHANGED, payload)
    return idempotency_key(PERSON_PERSONAS_CHANGED, payload)
