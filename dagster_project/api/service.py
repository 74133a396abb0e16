"""`PersonaService`: the snapshot being served and the events posted since the process started.

Read-mostly: posted events are never written anywhere. They live in this process and
change the poster's view at once; the daily run knows nothing of them, and a restart
forgets them. Each person keeps at most `max_posted_events` of them (the newest by
timestamp; PERSONAS_API_MAX_POSTED_EVENTS, default 5,000), so memory and the cost of a
post stay bounded however often someone posts. A reload swaps in a new snapshot and replays each person's posted events
against it the next time that person is read or posted to (people erased from the
warehouse in the meantime lose their posted events too).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from dagster_project.api.schemas import PostedEvent
from dagster_project.api.snapshot import Snapshot, SnapshotUnavailable, load_snapshot, source_fingerprint
from dagster_project.api.updates import assign_to_personas, events_frame, merged_personas, posted_memories
from dagster_project.review.actions import Decision, WarehouseBusy, decide_day, set_label, warehouse
from dagster_project.webhooks.events import person_personas_changed

log = logging.getLogger("personas.api")
MAX_POSTED_EVENTS_ENV = "PERSONAS_API_MAX_POSTED_EVENTS"
DEFAULT_MAX_POSTED_EVENTS = 5_000
T = TypeVar("T")


class UnknownPerson(LookupError):
    """Neither a person id nor a known identifier of the snapshot's warehouse."""


@dataclass(frozen=True)
class PostedState:
    """A person's posted events and what they led to under `snapshot`."""

    snapshot: Snapshot
    events: pl.DataFrame
    memories: pl.DataFrame
    personas: pl.DataFrame


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class PersonaService:
    """Thread-safe access to the snapshot; one lock serialises the (CPU-bound, short) updates."""

    def __init__(self, home: Path, lock_wait_seconds: float = 10.0, max_posted_events: int | None = None) -> None:
        self.home = home
        self.lock_wait_seconds = lock_wait_seconds
        self.max_posted_events = max_posted_events or int(
            os.environ.get(MAX_POSTED_EVENTS_ENV, DEFAULT_MAX_POSTED_EVENTS)
        )
        self._snapshot = load_snapshot(home, lock_wait_seconds=lock_wait_seconds)
        self._posted: dict[str, PostedState] = {}
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def reload(self) -> Snapshot:
        """Read the warehouse and the champion again; raises `SnapshotUnavailable` and keeps serving the old one."""
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> Snapshot:
        fresh = load_snapshot(self.home, self._snapshot, self.lock_wait_seconds)
        with self._lock:
            self._snapshot = fresh
            self._posted = {person: state for person, state in self._posted.items() if person in fresh.persons}
        log.info("reloaded: personas as of %s, model version %s", fresh.champion.as_of, fresh.champion.version)
        return fresh

    def set_label(self, persona_id: int, label: str | None, by: str) -> dict:
        """Write a persona id's human label (None clears it) to the warehouse, then serve it at once.

        The only write of the API: the warehouse is opened for writing just for it, under the reload
        lock so no read-only session of this process is open meanwhile (DuckDB refuses mixing them).
        """
        with self._reload_lock:
            try:
                set_label(self.home, persona_id, label, by, self.lock_wait_seconds)
            except WarehouseBusy as error:
                raise SnapshotUnavailable(str(error)) from error
            snapshot = self._reload()
        served = next((row for row in snapshot.catalogue if row["persona_id"] == persona_id), None)
        return {"persona_id": persona_id, "as_of": snapshot.champion.as_of.isoformat(),
                "in_served_catalogue": served is not None, "persona": served}

    def decide_review(self, day: date, status: str, by: str) -> Decision:
        """Approve or reject a day's drift review as `personas review` does, then serve the champion it leaves."""
        with self._reload_lock:
            try:
                decision = decide_day(self.home, day, status, by)
            except WarehouseBusy as error:
                raise SnapshotUnavailable(str(error)) from error
            self._reload()
        return decision

    def read_warehouse(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`read` over a short read-only session, never beside this process's writes (DuckDB refuses a read-only
        and a writing connection to one file in one process): for readers of more than the snapshot holds."""
        with self._reload_lock:
            try:
                with warehouse(self.home, read_only=True, wait_seconds=self.lock_wait_seconds) as connection:
                    return read(connection)
            except WarehouseBusy as error:
                raise SnapshotUnavailable(str(error)) from error

    def watch(self, poll_seconds: float) -> threading.Thread:
        """Reload in the background once the warehouse or MLflow store changed and then stayed unchanged for a poll.

        Waiting for a quiet poll keeps the short read-only session out of a run's way: DuckDB
        refuses a writer while any reader holds the file.
        """
        def loop() -> None:
            seen = self._snapshot.fingerprint
            while not self._stop.wait(poll_seconds):
                current = source_fingerprint(self.home)
                if current != self._snapshot.fingerprint and current == seen:
                    try:
                        self.reload()
                    except SnapshotUnavailable as error:
                        log.warning("reload postponed: %s", error)
                    except Exception:  # e.g. a table caught mid-rewrite: the loop must outlive it
                        log.exception("reload failed; still serving the previous snapshot; retrying at the next poll")
                seen = current

        watcher = threading.Thread(target=loop, name="personas-api-reload", daemon=True)
        watcher.start()
        return watcher

    def stop(self) -> None:
        self._stop.set()

    def health(self) -> dict:
        snapshot = self._snapshot
        return {
            "status": "ok",
            "as_of": snapshot.champion.as_of.isoformat(),
            "model_version": snapshot.champion.version,
            "personas": len(snapshot.catalogue),
            "persons": len(snapshot.persons),
            "loaded_at": snapshot.loaded_at.isoformat(),
            "sources_changed_since_load": source_fingerprint(self.home) != snapshot.fingerprint,
            "persons_with_posted_events": len(self._posted),
        }

    def catalogue(self) -> dict:
        snapshot = self._snapshot
        return {"as_of": snapshot.champion.as_of.isoformat(), "model_version": snapshot.champion.version,
                "personas": snapshot.catalogue}

    def person_view(self, reference: str) -> dict:
        with self._lock:
            snapshot = self._snapshot
            person_id = self._resolve(snapshot, reference)
            state = self._current_state(snapshot, person_id)
        if state is None:
            return self._view(snapshot, person_id, snapshot.user_personas.get(person_id), None)
        return self._view(snapshot, person_id, state.personas, state.memories)

    def post_events(self, reference: str, events: list[PostedEvent]) -> dict:
        """Segment, assign and merge; the answer lists the memories holding this request's events."""
        with self._lock:
            snapshot = self._snapshot
            person_id = self._resolve(snapshot, reference)
            incoming = events_frame(person_id, events)
            previous = self._current_state(snapshot, person_id)
            known = previous.events if previous else incoming.clear()
            new = incoming.unique("event_id", keep="first", maintain_order=True).join(known, on="event_id", how="anti")
            state, dropped = previous, 0
            if not new.is_empty():
                kept = pl.concat([known, new])
                dropped = max(0, kept.height - self.max_posted_events)
                if dropped:  # the oldest go: a person's recent behaviour is what their personas should follow
                    kept = kept.sort("ts", maintain_order=True).tail(self.max_posted_events)
                state = self._compute(snapshot, person_id, kept)
                self._posted[person_id] = state
        if state is not previous:  # webhook subscribers hear of it if the person's personas moved (never waited on)
            before = previous.personas if previous else snapshot.user_personas.get(person_id)
            person_personas_changed(self.home, person_id, snapshot.champion.as_of, before, state.personas)
        incoming_ids = incoming["event_id"].unique()
        touched = state.memories.filter(pl.col("event_ids").list.eval(pl.element().is_in(incoming_ids)).list.any())
        in_memories = state.memories["event_ids"].explode()
        labels = {row["persona_id"]: row["label"] for row in snapshot.catalogue}
        return {
            "person_id": person_id,
            "events_received": incoming.height,
            "new_events": new.height,
            "posted_events_kept": state.events.height,
            "oldest_posted_events_dropped": dropped,
            "events_without_intent": int((~incoming_ids.is_in(in_memories)).sum()),
            "memories": [
                {
                    "memory_id": row["memory_id"],
                    "intent": row["intent"],
                    "n_events": row["n_events"],
                    "start_ts": _timestamp(row["start_ts"]),
                    "end_ts": _timestamp(row["end_ts"]),
                    "summary": row["summary"],
                    "persona_id": row["persona_id"],
                    "persona_label": labels.get(row["persona_id"]),
                    "distance": row["distance"],
                }
                for row in touched.iter_rows(named=True)
            ],
            "view": self._view(snapshot, person_id, state.personas, state.memories),
        }

    @staticmethod
    def _resolve(snapshot: Snapshot, reference: str) -> str:
        person_id = snapshot.resolve_person(reference)
        if person_id is None:
            raise UnknownPerson(
                f"unknown person '{reference}': neither a person_id nor a cookie:, customer:, device: or handle: "
                f"identifier of the warehouse as of {snapshot.champion.as_of}"
            )
        return person_id

    def _current_state(self, snapshot: Snapshot, person_id: str) -> PostedState | None:
        """The person's posted state, replayed against `snapshot` if it was computed on an older one."""
        state = self._posted.get(person_id)
        if state is not None and state.snapshot is not snapshot:
            state = self._compute(snapshot, person_id, state.events)
            self._posted[person_id] = state
        return state

    @staticmethod
    def _compute(snapshot: Snapshot, person_id: str, events: pl.DataFrame) -> PostedState:
        memories = assign_to_personas(snapshot.champion, posted_memories(snapshot, events))
        return PostedState(snapshot, events, memories, merged_personas(snapshot, snapshot.window_of(person_id), memories))

    @staticmethod
    def _view(snapshot: Snapshot, person_id: str, personas: pl.DataFrame | None, posted: pl.DataFrame | None) -> dict:
        """Weights, labels and evidence (with each memory's summary) of one person."""
        evidence_columns = ("memory_id", "summary", "start_ts")
        memories = snapshot.window_of(person_id).select(evidence_columns).with_columns(posted=pl.lit(False))
        if posted is not None:  # posted first: a memory the warehouse holds too is the warehouse's
            memories = pl.concat([posted.select(evidence_columns).with_columns(posted=pl.lit(True)), memories])
        by_id = {row["memory_id"]: row for row in memories.iter_rows(named=True)}
        labels = {row["persona_id"]: row["label"] for row in snapshot.catalogue}
        rows = [] if personas is None else personas.iter_rows(named=True)
        return {
            "person_id": person_id,
            "as_of": snapshot.champion.as_of.isoformat(),
            "model_version": snapshot.champion.version,
            "includes_posted_events": posted is not None,
            "personas": [
                {
                    "persona_id": row["persona_id"],
                    "weight": row["weight"],
                    "label": row["label"],
                    "persona_label": labels.get(row["persona_id"]),
                    "top_terms": row["top_terms"],
                    "evidence": [
                        {**by_id[memory_id], "start_ts": _timestamp(by_id[memory_id]["start_ts"])}
                        for memory_id in row["evidence_memory_ids"]
                    ],
                }
                for row in rows
            ],
        }
