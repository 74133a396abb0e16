"""What a measured run spends storing Dagster events: wall time in the event log storage and events by type.

Dagster stores an event per asset and day (planned at run creation, materialised at the step's
end), so on many small days this is the fixed cost per day that no step's own work explains.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager

from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage

from dagster_project.resources.event_log import BatchingSqliteEventLogStorage

# Every write ends in one of these: Dagster's own store_event_batch (EventLogStorage's) calls store_event once per
# event; the platform's storage writes its batches, and the check evaluations it held, with `_store_together`.
STORE_METHODS = ((SqliteEventLogStorage, "store_event"), (BatchingSqliteEventLogStorage, "_store_together"))


class EventLogMeter:
    """Wraps the SQLite event log's store methods for the block; a call inside another counts once."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.events: Counter[str] = Counter()
        self.seconds_by_type: Counter[str] = Counter()  # a batch's time goes to its first event's type
        self._depth = threading.local()

    def _wrap(self, method):
        meter = self

        def store(storage, payload):
            depth = getattr(meter._depth, "value", 0)
            if depth:
                return method(storage, payload)
            entries = [payload] if isinstance(payload, EventLogEntry) else payload  # an entry is a NamedTuple
            meter._depth.value = 1
            started = time.perf_counter()
            try:
                return method(storage, payload)
            finally:
                elapsed = time.perf_counter() - started
                kinds = [entry.dagster_event_type.value if entry.dagster_event_type else "log message" for entry in entries]
                meter.seconds += elapsed
                meter.calls += 1
                meter._depth.value = 0
                meter.events.update(kinds)
                meter.seconds_by_type[f"{kinds[0]}{' (batch)' if len(kinds) > 1 else ''}"] += elapsed

        return store

    @contextmanager
    def measuring(self):
        originals = [(owner, name, owner.__dict__[name]) for owner, name in STORE_METHODS]
        for owner, name, method in originals:
            setattr(owner, name, self._wrap(method))
        try:
            yield self
        finally:
            for owner, name, method in originals:
                setattr(owner, name, method)

    def summary(self) -> dict:
        return {"seconds": self.seconds, "calls": self.calls, "events": sum(self.events.values()),
                "by_type": dict(self.events.most_common()),
                "seconds_by_type": {kind: round(seconds, 3) for kind, seconds in self.seconds_by_type.most_common()}}
