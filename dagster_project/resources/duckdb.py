"""A DuckDB resource that holds the file only while a step needs it.

DuckDB admits one writing process per file, so connections are short-lived and every
writer runs in the `duckdb` pool (limit 1): parallel partitions queue instead of failing.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster import ConfigurableResource

from dagster_project.paths import personas_home, warehouse_path
from dagster_project.warehouse import connect_waiting_for_lock

DUCKDB_POOL = "duckdb"


class DuckDBResource(ConfigurableResource):
    """`database`, else the warehouse of the run's home (`$PERSONAS_HOME/warehouse.duckdb`), found when a step
    starts rather than when the code location is imported."""

    database: str | None = None
    lock_wait_seconds: float = 60.0

    def database_path(self) -> str:
        return self.database or str(warehouse_path(personas_home()))

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = connect_waiting_for_lock(self.database_path(), read_only, self.lock_wait_seconds)
        try:
            yield connection
        finally:
            connection.close()
