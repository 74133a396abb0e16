"""The DuckDB resource's writes: partition replacement, schema growth, waiting for another process's lock."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dagster_project.warehouse import connect_waiting_for_lock, replace_partition_rows

DAY_1, DAY_2 = date(2026, 10, 1), date(2026, 10, 2)


def test_replacing_a_partition_keeps_other_days_and_adds_new_columns(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        replace_partition_rows(connection, "main.scores", pl.DataFrame({"event_date": [DAY_1, DAY_2], "score": [1, 2]}),
                               DAY_1, DAY_2)
        # A newer code version writes day 2 again with an extra column.
        replace_partition_rows(connection, "main.scores",
                               pl.DataFrame({"event_date": [DAY_2], "score": [3], "why": ["terms"]}), DAY_2, DAY_2)
        rows = connection.execute("select event_date, score, why from scores order by event_date").fetchall()
    assert rows == [(DAY_1, 1, None), (DAY_2, 3, "terms")]


def test_long_text_columns_are_stored_with_zstd(tmp_path: Path):
    lines = pl.DataFrame({
        "event_date": [DAY_1] * 200_000,
        "raw": [f'{{"event_id": "w-{i}", "title": "item number {i % 997}"}}' for i in range(200_000)],
        "landing_file": ["web/events/2026-10-01.jsonl"] * 200_000,
    })
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        replace_partition_rows(connection, "raw.lines", lines, DAY_1, DAY_1, zstd_columns=("raw",))
        connection.execute("checkpoint")
        codecs = dict(connection.execute(
            "select column_name, list(distinct compression) from pragma_storage_info('raw.lines') "
            "where segment_type = 'VARCHAR' group by column_name"
        ).fetchall())
        stored = connection.sql("select raw from raw.lines order by rowid").pl()
    assert codecs["raw"] == ["ZSTD"]
    assert "ZSTD" not in codecs["landing_file"]
    assert stored["raw"].equals(lines["raw"])


def test_a_write_in_any_row_order_keeps_every_row_and_leaves_the_connection_ordered(tmp_path: Path):
    memories = pl.DataFrame({
        "event_date": [DAY_1] * 50_000,
        "memory_id": [f"mem_{i}" for i in range(50_000)],
        "event_ids": [[f"w-{i}", f"w-{i + 1}"] for i in range(50_000)],
    })
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        replace_partition_rows(connection, "main.memories", memories, DAY_1, DAY_1, keep_row_order=False)
        stored = connection.sql("select * from memories order by memory_id").pl()
        setting = connection.execute("select current_setting('preserve_insertion_order')").fetchall()[0][0]
    assert stored.equals(memories.sort("memory_id"))
    assert setting is True  # the next write keeps its order again
    # A database opened unordered stays so after such a write: the setting is restored, not reset.
    with duckdb.connect(str(tmp_path / "w.duckdb"), config={"preserve_insertion_order": False}) as connection:
        replace_partition_rows(connection, "main.memories", memories.head(10), DAY_1, DAY_1, keep_row_order=False)
        assert connection.execute("select current_setting('preserve_insertion_order')").fetchall()[0][0] is False


def test_connect_waits_for_another_process_to_release_the_file(tmp_path: Path):
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(2)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(duckdb.IOException, match="lock"):
        connect_waiting_for_lock(str(path), read_only=False, wait_seconds=0)
    with connect_waiting_for_lock(str(path), read_only=False, wait_seconds=30) as connection:
        assert connection.execute("select 42").fetchall() == [(42,)]
    assert holder.wait(timeout=30) == 0
