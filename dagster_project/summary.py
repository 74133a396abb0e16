"""What a run produced, read back from the warehouse, and its check verdicts folded over its days, for the terminal."""

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
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


def rerun_commands(days: list[date]) -> list[str]:
    """One `personas run` per run of consecutive days."""
    commands, block = [], []
    for day in sorted(days):
        if block and day != block[-1] + timedelta(days=1):
            commands.append(_run_command(block))
            block = []
        block.append(day)
    return commands + ([_run_command(block)] if block else [])


def _run_command(days: list[date]) -> str:
    return f"personas run --start {days[0]}" + (f" --end {days[-1]}" if len(days) > 1 else "")


# Checks record one evaluation per day (see metadata.day_check_evaluations); the command line reports one line per
# check over a run's days. Dagster is imported only here, when a run's evaluations are folded: the rest of the
# summary reads the warehouse without it.

def gate_verdicts(evaluations: Iterable) -> list:
    """A run's evaluations with each GX gate's days folded into one over them, as the command line reports a run:
    passed if every day passed, ERROR if a day was blocked, the blocked and warned days listed."""
    return _fold_days_by_check(evaluations, lambda evaluation: evaluation.check_name.startswith("gx_"), _folded_gate)


def _fold_days_by_check(evaluations: Iterable, folds: Callable, fold: Callable) -> list:
    """`evaluations` with the per-day ones of each check that `folds` selects replaced by `fold` of its days,
    in date order."""
    days_of: dict = {}
    others = []
    for evaluation in evaluations:
        if evaluation.partition and folds(evaluation):
            days_of.setdefault(evaluation.asset_check_key, []).append(evaluation)
        else:
            others.append(evaluation)
    return others + [fold(sorted(days, key=lambda e: e.partition)) for days in days_of.values()]


def _folded_gate(days: list):
    from dagster import AssetCheckEvaluation, AssetCheckSeverity, MetadataValue

    def values(key: str) -> list:
        return [day.metadata[key].value for day in days]

    def listed(key: str) -> str:
        return ", ".join(name for name in values(key) if name != "none") or "none"

    blocked = [date.fromisoformat(day.partition) for day in days if day.metadata["failed_partitions"].value != "none"]
    return AssetCheckEvaluation(
        asset_key=days[0].asset_key,
        check_name=days[0].check_name,
        passed=all(day.passed for day in days),
        severity=AssetCheckSeverity.ERROR if blocked else AssetCheckSeverity.WARN,
        blocking=days[0].blocking,
        partition=days[0].partition if len(days) == 1 else None,
        metadata={
            "partition": days[0].partition if len(days) == 1 else f"{days[0].partition}..{days[-1].partition}",
            "evaluated": sum(values("evaluated")),
            "gx_validated_partitions": sum(values("gx_validated_partitions")),
            "failed": sum(values("failed")),
            "failed_partitions": listed("failed_partitions"),
            "warned_partitions": listed("warned_partitions"),
            "failed_expectations": sorted({name for names in values("failed_expectations") for name in names}),
            "warned_expectations": sorted({name for names in values("warned_expectations") for name in names}),
            "rerun": "; ".join(rerun_commands(blocked)) or "none",
            "unexpected_examples": MetadataValue.json(
                {name: examples for day in values("unexpected_examples") for name, examples in day.items()}),
        },
    )


def day_check_verdicts(evaluations: Iterable) -> list:
    """A run's evaluations with each day-by-day check other than the GX gates (drift, KPIs, fairness: one evaluation
    per day) folded into one over the run's days, as the command line reports a run: passed if every day passed,
    the days that did not listed with what breached on each. `gate_verdicts` folds the gates."""
    return _fold_days_by_check(
        evaluations, lambda evaluation: not evaluation.check_name.startswith("gx_"), _folded_days)


def _folded_days(days: list):
    from dagster import AssetCheckEvaluation, AssetCheckSeverity

    failed = [day for day in days if not day.passed]
    breached = [f"{day.partition}: {day.metadata['breached'].value if 'breached' in day.metadata else 'failed'}"
                for day in failed]
    return AssetCheckEvaluation(
        asset_key=days[0].asset_key,
        check_name=days[0].check_name,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if any(day.severity == AssetCheckSeverity.ERROR for day in failed)
        else AssetCheckSeverity.WARN,
        blocking=days[0].blocking,
        partition=days[0].partition if len(days) == 1 else None,
        metadata={
            "partition": days[0].partition if len(days) == 1 else f"{days[0].partition}..{days[-1].partition}",
            "breached_days": "; ".join(breached) or "none",
        },
    )
