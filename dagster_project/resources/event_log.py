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
"""

import os
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

SYNC_SETTING = "PERSONAS_DAGSTER_SQLITE_SYNC"
SYNC_MODES = ("off", "normal", "full", "extra")


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
