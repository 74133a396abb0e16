"""What a run produced, read back from the warehouse for the terminal."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from dagster_project.paths import warehouse_path
from dagster_project.science.labelling import explanation_text
from dagster_project.warehouse import connect_waiting_for_lock, scalar

LOCK_WAIT_SECONDS = 10.0
SUMMARY_TABLES = (
    "fct_events", "rejected_events", "dim_persons", "dim_person_identifiers",
    "intent_memories", "memory_assignments", "personas", "user_personas", "persona_utility",
)


def _existing_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in connection.execute("select table_name from information_schema.tables").fetchall()}


def _format_table(header: list[str], rows: list[tuple]) -> str:
    cells = [header, *[[("" if value is None else str(value)) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@contextmanager
def _read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection | str]:
    """A read-only connection, or the sentence that says why there is none (no file, a run writing it)."""
    if not path.exists():
        yield f"No warehouse at {path} yet: run `personas run --start D` first."
        return
    try:
        connection = connect_waiting_for_lock(str(path), read_only=True, wait_seconds=LOCK_WAIT_SECONDS)
    except duckdb.ConnectionException:
        # A failed step's traceback can keep its read-write connection alive in a reference cycle, and DuckDB
        # refuses a read-only one beside it in the same process: collecting the cycle closes it.
        gc.collect()
        connection = connect_waiting_for_lock(str(path), read_only=True, wait_seconds=LOCK_WAIT_SECONDS)
    except duckdb.IOException as error:
        yield f"The warehouse {path} is busy (a run is writing it?): {error}"
        return
    try:
        yield connection
    finally:
        connection.close()


def warehouse_summary(home: Path) -> str:
    """Raw, staged and rejected records per source and day; rows per output table, and which never materialised."""
    with _read_only(warehouse_path(home)) as connection:
        if isinstance(connection, str):
            return connection
        tables = _existing_tables(connection)
        sections = []
        if "audit_record_counts" in tables:
            rows = connection.execute(
                """
                select event_date, source, sum(raw_lines), sum(staged), sum(rejected),
                       case when sum(raw_lines) = sum(staged) + sum(rejected) then 'yes' else 'NO' end
                from audit_record_counts group by all order by event_date, source
                """
            ).fetchall()
            sections.append(
                "Records per source and day (staged + rejected must equal raw):\n"
                + _format_table(["day", "source", "raw", "staged", "rejected", "balanced"], rows)
            )
        if "rejected_events" in tables:
            rows = connection.execute(
                "select reason, count(*) from rejected_events group by reason order by count(*) desc"
            ).fetchall()
            sections.append("Rejected records by reason:\n" + _format_table(["reason", "records"], rows))
        counts = [
            (table, scalar(connection, f"select count(*) from {table}"))
            for table in SUMMARY_TABLES
            if table in tables
        ]
        sections.append("Rows per table:\n" + _format_table(["table", "rows"], counts))
        missing = [table for table in SUMMARY_TABLES if table not in tables]
        if missing:
            sections.append(f"Never materialised: {', '.join(missing)} (a gate blocked them or their run failed; "
                            "see `personas run` output or the Dagster UI).")
    return "\n\n".join(sections)


def persona_catalogue(home: Path) -> str:
    """The latest model date's personas: label, share, size and quality, then what distinguishes each."""
    with _read_only(warehouse_path(home)) as connection:
        if isinstance(connection, str):
            return connection
        if "personas" not in _existing_tables(connection) or not scalar(connection, "select count(*) from personas"):
            return "No personas yet (the persona step has not materialised any day)."
        rows = connection.execute(
            """
            select persona_id, label, round(share * 100, 1) || '%', n_memories, n_users, round(quality, 2)
            from personas where event_date = (select max(event_date) from personas)
            order by share desc
            """
        ).fetchall()
        as_of = scalar(connection, "select max(event_date) from personas")
        explanations = connection.execute(
            "select persona_id, explanation from personas where event_date = ? order by share desc", [as_of]
        ).fetchall()
    return (
        f"Persona catalogue as of {as_of}:\n"
        + _format_table(["id", "label", "share", "memories", "people", "quality"], rows)
        + "\n\nWhat sets each persona apart (c-TF-IDF term weights; share of memories per source vs all):\n"
        + "\n".join(
            f"{persona_id:>4}  {explanation_text(explanation, n_terms=3)}" for persona_id, explanation in explanations
        )
    )
