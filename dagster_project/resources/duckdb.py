"""A DuckDB resource that holds the file only while a step needs it.

DuckDB admits one writing process per file, so connections are short-lived and every
writer runs in the `duckdb` pool (limit 1): parallel partitions queue instead of failing.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster import ConfigurableResource

from dagster_project.warehouse import connect_waiting_for_lock

DUCKDB_POOL = "duckdb"


class DuckDBResource(ConfigurableResource):
    database: str
    lock_wait_seconds: float = 60.0

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = connect_waiting_for_lock(self.database, read_only, self.lock_wait_seconds)
        try:
            yield connection
        finally:
            connection.close()
