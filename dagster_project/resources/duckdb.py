"""A DuckDB resource that holds the file only while a step needs it.

DuckDB admits one writing process per file, so connections are short-lived and every
writer runs in the `duckdb` pool (limit 1): parallel partitions queue instead of failing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb
import polars as pl
from dagster import ConfigurableResource

DUCKDB_POOL = "duckdb"


class DuckDBResource(ConfigurableResource):
    database: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = duckdb.connect(self.database, read_only=read_only)
        try:
            yield connection
        finally:
            connection.close()


def replace_partition_rows(
    connection: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, start: date, end: date
) -> None:
    """Idempotent write: the rows of [start, end] are replaced by `frame` in one transaction."""
    schema = table.split(".")[0] if "." in table else "main"
    connection.execute(f"create schema if not exists {schema}")
    connection.register("incoming_rows", frame.to_arrow())
    try:
        connection.execute(f"create table if not exists {table} as select * from incoming_rows limit 0")
        connection.execute("begin transaction")
        try:
            connection.execute(f"delete from {table} where event_date between ? and ?", [start, end])
            connection.execute(f"insert into {table} by name select * from incoming_rows")
            connection.execute("commit")
        except Exception:
            connection.execute("rollback")
            raise
    finally:
        connection.unregister("incoming_rows")


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, parameters: list | None = None):
    """The single value of a query, fully fetched so the connection is free for the next statement."""
    return connection.execute(sql, parameters or []).fetchall()[0][0]
