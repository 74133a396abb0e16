"""What Dagster's event log costs per partition day: no fsync per event on the run history.

A run over a range records, per asset and day, an `ASSET_MATERIALIZATION_PLANNED` event when
the run is created and an `ASSET_MATERIALIZATION` when the step ends: a 200-day run of the
graph wrote 10,000 planned events (2m20s before its first step) and as many materialisations.
Dagster's `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS` would write one planned event per
asset instead, but then a failed run no longer marks its days failed in the UI: not used.

Writes: Dagster's SQLite storage writes each event through about five short transactions, and
with SQLite's default `synchronous=FULL` each commit and close waits for the disk: 0.25 s per
event on this VM's shared disk, 50 s for one asset's 200 days (10 s with `synchronous=OFF`),
which made the raw load, dbt and gate steps of a many-day run cost minutes per asset whatever
their data. (WAL with `synchronous=NORMAL` does not help: Dagster opens a new connection per
write, and the last close checkpoints the WAL with an fsync.)

With `synchronous=OFF` on the SQLite files under DAGSTER_HOME only, a killed process loses
nothing it committed (the OS still holds the pages); an OS crash or power cut may lose or
corrupt the latest run history, never the warehouse (DuckDB) or the MLflow store, which keep
their fsyncs. `PERSONAS_DAGSTER_SQLITE_SYNC=full` (or `normal`) restores them.

Transactions: Dagster already hands a step's per-day materialisations and a run's planned
events to `store_event_batch` as one batch once `DAGSTER_EVENT_BATCH_SIZE` is set, but its
SQLite storage then stores them one by one. `BatchingSqliteEventLogStorage` (named in the
embedded dagster.yaml, so the CLI, the webserver, the daemon and run workers all use it) writes
such a batch as one insert into the run's file and one transaction on the index: the same rows,
tags and asset records as one `store_event` per event, without four connections per event.

Check evaluations: a gate records one evaluation per day, and Dagster hands each to `store_event`
alone (it batches only materialisations, observations and plans): three SQLite connections
each, ~7-10 ms, 20 of the 393 s of a 200-day history. This storage holds a run's evaluations
until it is next used (the step's next event, any read, `dispose`) and stores them as one
batch before that use: a reader in this process always sees them, the run's history keeps
Dagster's order, and the step's end stores them at the latest. A process killed between a
check's evaluation and the step's next event loses them, as it loses the materialisations
Dagster buffers for its own batches.

Schema probes: before most reads and writes Dagster asks whether a table, an asset-key column
or a data migration exists, each time on a new connection (29 asset-record reads of a dbt step
made 58 such probes). A yes is kept for the storage's life; migrations only add.
"""

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial

from dagster import Field, StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

SYNC_SETTING = "PERSONAS_DAGSTER_SQLITE_SYNC"
SYNC_MODES = ("off", "normal", "full", "extra")
BATCH_SIZE_SETTING = "DAGSTER_EVENT_BATCH_SIZE"
# Events a batch holds at most: a 200-day run plans 7,000 asset-days, stored in 7 transactions.
EVENT_BATCH_SIZE = 1000


def _under_dagster_home(connection: sqlite3.Connection) -> bool:
    """Dagster names its files from DAGSTER_HOME's own spelling: a prefix test, no path resolution per connection."""
    dagster_home = os.environ.get("DAGSTER_HOME")
    if not dagster_home:
        return False
    database_file = connection.execute("pragma database_list").fetchone()[2]
    return bool(database_file) and os.path.abspath(database_file).startswith(os.path.join(os.path.abspath(dagster_home), ""))


def _set_synchronous(dbapi_connection, _connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection) or not _under_dagster_home(dbapi_connection):
        return
    mode = os.environ.get(SYNC_SETTING, "off").lower()
    if mode not in SYNC_MODES:
        raise ValueError(f"{SYNC_SETTING}={mode!r}: expected one of {', '.join(SYNC_MODES)}")
    dbapi_connection.execute(f"pragma synchronous={mode}")


def lighten_event_log() -> None:
    """`PERSONAS_DAGSTER_SQLITE_SYNC` (default off) on every SQLite connection Dagster opens from now on."""
    if not event.contains(Engine, "connect", _set_synchronous):
        event.listen(Engine, "connect", _set_synchronous)


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log, storing each batch of asset events, and each run of check
    evaluations, in one transaction per file.

    Without `base_dir` it is Dagster's default place, `$DAGSTER_HOME/history/runs`, so a home
    keeps its run history. Creating it turns batching on for this process (`DAGSTER_EVENT_BATCH_SIZE`,
    unless set) and `synchronous` off for Dagster's SQLite files (`lighten_event_log`).
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        if base_dir is None:
            if not os.environ.get("DAGSTER_HOME"):
                raise ValueError("BatchingSqliteEventLogStorage needs a base_dir or DAGSTER_HOME")
            base_dir = os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")
        # Before Dagster's set-up, which already connects.
        self._held_evaluations: list[EventLogEntry] = []
        self._holding = threading.RLock()  # a reader in another thread waits for the held events to land
        self._open_index = threading.local()
        self._schema_present: set[tuple[str, str]] = set()
        super().__init__(base_dir, inst_data=inst_data)
        os.environ.setdefault(BATCH_SIZE_SETTING, str(EVENT_BATCH_SIZE))
        lighten_event_log()

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> "BatchingSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def store_event(self, event: EventLogEntry) -> None:
        """A run's check evaluation is held for the next batch; any other event is stored after the held ones."""
        if event.run_id and event.is_dagster_event and event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            with self._holding:
                self._held_evaluations.append(event)
                if len(self._held_evaluations) < EVENT_BATCH_SIZE:
                    return
            self._store_held_evaluations()
            return
        self._store_held_evaluations()
        super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """One run's batchable events as one batch (`_store_together`); any other batch event by event."""
        self._store_held_evaluations()
        if len({entry.run_id for entry in events}) != 1 or not all(
            entry.is_dagster_event and entry.dagster_event_type in BATCH_WRITABLE_EVENTS for entry in events
        ):
            super().store_event_batch(events)
            return
        self._store_together(events)

    def _store_held_evaluations(self) -> None:
        with self._holding:
            held, self._held_evaluations = self._held_evaluations, []
            if held:
                self._store_together(held)

    def _store_together(self, events: Sequence[EventLogEntry]) -> None:
        """Asset and check events, in order: one insert into each run's file, then one index transaction for
        their rows, tags, asset records and check executions (the rows `store_event` writes one event at a time)."""
        rows = [self._event_to_row(entry) for entry in events]
        for run_id in dict.fromkeys(entry.run_id for entry in events):
            with self.run_connection(run_id) as connection:
                connection.execute(SqlEventLogStorageTable.insert(), [row for row in rows if row["run_id"] == run_id])
        with self.index_transaction() as connection, self._sharing_index(connection):
            event_ids = connection.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            ).scalars().all()
            asset_events = [(entry, event_id) for entry, event_id in zip(events, event_ids, strict=True)
                            if entry.dagster_event_type in ASSET_EVENTS]
            if asset_events:
                self._store_asset_event_tags(connection, *map(list, zip(*asset_events, strict=True)))
                # An asset's record keeps what its last event of each type wrote: store only those, in order.
                last_of_kind: dict[tuple, tuple[EventLogEntry, int]] = {}
                for entry, event_id in asset_events:
                    kind = (entry.dagster_event.asset_key, entry.dagster_event_type)
                    last_of_kind.pop(kind, None)
                    last_of_kind[kind] = (entry, event_id)
                for entry, event_id in last_of_kind.values():
                    self._store_asset_event(connection, entry, event_id)
            for entry, event_id in zip(events, event_ids, strict=True):
                if entry.dagster_event_type in ASSET_CHECK_EVENTS:
                    self.store_asset_check_event(entry, event_id)  # on the shared transaction

    @contextmanager
    def _sharing_index(self, connection: Connection) -> Iterator[None]:
        """Dagster's check-execution writes open their own index connection: in the block they get this one."""
        self._open_index.connection = connection
        try:
            yield
        finally:
            self._open_index.connection = None

    def index_connection(self):
        shared = getattr(self._open_index, "connection", None)
        return nullcontext(shared) if shared is not None else super().index_connection()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Every connection, to read or to write, comes after the held evaluations are stored."""
        self._store_held_evaluations()
        with super()._connect(shard) as connection:
            yield connection

    def _present(self, part: tuple[str, str], probe: Callable[[], bool]) -> bool:
        """A schema probe's yes, kept (see the module's docstring)."""
        if part not in self._schema_present and probe():
            self._schema_present.add(part)
        return part in self._schema_present

    def has_table(self, table_name: str) -> bool:
        return self._present(("table", table_name), partial(super().has_table, table_name))

    def has_secondary_index(self, name: str) -> bool:
        return self._present(("data migration", name), partial(super().has_secondary_index, name))

    def has_asset_key_col(self, column_name: str) -> bool:
        return self._present(("asset key column", column_name), partial(super().has_asset_key_col, column_name))

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        return self._present(("asset key column", column_name),
                             partial(super()._has_asset_key_col_on_connection, conn, column_name))

    def dispose(self) -> None:
        self._store_held_evaluations()
        super().dispose()
