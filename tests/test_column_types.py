"""One mapping of frame columns to DuckDB types: the table `replace_partition_rows` creates and the schema Dagster shows."""

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from dagster_project.metadata import column_schema
from dagster_project.warehouse import column_types, replace_partition_rows

DAY = date(2026, 10, 1)


def test_the_written_table_and_its_column_schema_have_the_same_types(tmp_path: Path):
    frame = pl.DataFrame({
        "event_date": [DAY],
        "persona_id": pl.Series([3], dtype=pl.Int32),
        "share": [0.25],
        "terms": [["tea", "paperback"]],
        "explanation": [{"term": "tea", "weight": 0.5}],
        "fitted_at": [datetime(2026, 10, 1, 6, tzinfo=UTC)],
        "label": pl.Series(["Book enthusiast"], dtype=pl.Categorical),
    })
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        replace_partition_rows(connection, "main.personas", frame, DAY, DAY)
        stored = {name: kind for name, kind, *_ in connection.execute("describe personas").fetchall()}
    assert stored == {
        "event_date": "DATE", "persona_id": "INTEGER", "share": "DOUBLE", "terms": "VARCHAR[]",
        "explanation": "STRUCT(term VARCHAR, weight DOUBLE)", "fitted_at": "TIMESTAMP WITH TIME ZONE",
        "label": "VARCHAR",
    }
    assert column_types(frame) == stored
    assert {column.name: column.type for column in column_schema(frame).columns} == stored
