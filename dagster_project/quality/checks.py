"""Great Expectations suites as blocking Dagster asset checks, one per gated table.

Each check reads only the days of the partition range being materialised from DuckDB
(read-only, in the `duckdb` pool), validates every day on its own against the table's
suite in `expectations/` (timestamps inside that day, row count near the previous day's),
and fails with ERROR severity when any day fails. Thresholds: see `gx_runner`
(PERSONAS_GX_MAX_REJECT_RATE, PERSONAS_GX_MIN_ROW_RATIO, PERSONAS_GX_MAX_ROW_RATIO).

Blocking and multi-asset steps. A blocking check runs as its own step after the step that
produced its asset, and stops the steps that consume that asset. dbt builds every model
in one step, so a check on `stg_web__events` runs after `fct_events` is already built and
cannot stop it. Hence the gate at the warehouse boundary: the `fct_events` check depends
on every staging model and `audit_record_counts`, so a failing staging or reject-rate
check leaves the `fct_events` check unexecuted, and with it everything downstream of
`fct_events` (memories, personas). `user_personas` is gated the same way on `personas`,
which the persona step writes together with it.

Partitions. A run for one day blocks only that day. A single run over a range has one
check step for the whole range: one bad day blocks the range's downstream steps, and the
check's metadata names the failed days so the others can be rerun on their own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetKey,
    AutomationCondition,
    MetadataValue,
    asset_check,
)
from duckdb import DuckDBPyConnection

from dagster_project.partitions import daily_partitions, days_between, partition_dates
from dagster_project.paths import personas_home
from dagster_project.resources.duckdb import DUCKDB_POOL, DuckDBResource

if TYPE_CHECKING:
    import pandas as pd

    from dagster_project.quality.gx_runner import ValidationOutcome

PreviousRowCount = Callable[[DuckDBPyConnection, date], int | None]


def _rows_of_table(table: str) -> PreviousRowCount:
    def count(connection: DuckDBPyConnection, day: date) -> int:
        return connection.execute(f"select count(*) from {table} where event_date = ?", [day]).fetchall()[0][0]

    return count


def _staged_rows(source: str, entity: str) -> PreviousRowCount:
    """Staging views hold only the range dbt last built; the audit table keeps every day's count."""

    def count(connection: DuckDBPyConnection, day: date) -> int | None:
        rows = connection.execute(
            "select staged from audit_record_counts where source = ? and entity = ? and event_date = ?",
            [source, entity, day],
        ).fetchall()
        return rows[0][0] if rows else None

    return count


@dataclass(frozen=True)
class GatedTable:
    """A table, the suite named after it, the frame it validates for one day, and what it waits for."""

    name: str
    frame_sql: str = "select * from {name} where event_date = ?"
    previous_row_count: PreviousRowCount | None = None
    upstream: tuple[str, ...] = ()

    @property
    def asset_key(self) -> AssetKey:
        return AssetKey(self.name)

    def read_day(self, connection: DuckDBPyConnection, day: date, parameters: dict) -> tuple["pd.DataFrame", dict]:
        """The day's frame and suite parameters; a large day is screened in SQL (see `screening`)."""
        from dagster_project.quality.gx_runner import load_suite_expectations
        from dagster_project.quality.screening import sample_rows, scaled_row_count_parameters, screened_frame_sql

        frame_sql = self.frame_sql.format(name=self.name)
        day_rows = connection.execute(f"select count(*) from ({frame_sql})", [day]).fetchall()[0][0]
        if day_rows <= sample_rows():
            return connection.execute(frame_sql, [day]).df(), parameters
        screened_sql = screened_frame_sql(frame_sql, load_suite_expectations(self.name), parameters, sample_rows())
        frame = connection.execute(screened_sql, [day]).df()
        return frame, scaled_row_count_parameters(parameters, len(frame), day_rows)


REJECT_RATE_SQL = """
select source, event_date, sum(raw_lines) as raw_lines, sum(staged) as staged, sum(rejected) as rejected,
       sum(rejected) / nullif(sum(raw_lines), 0) as reject_rate,
       sum(raw_lines) - sum(staged) - sum(rejected) as unaccounted_lines
from audit_record_counts where event_date = ? group by source, event_date
"""

PERSON_WEIGHT_SUM_SQL = """
select *, sum(weight) over (partition by person_id) as person_weight_sum
from user_personas where event_date = ?
"""

STAGING_TABLES = (
    GatedTable("stg_web__events", previous_row_count=_staged_rows("web", "events")),
    GatedTable("stg_social__engagements", previous_row_count=_staged_rows("social", "engagements")),
    GatedTable("stg_crm__customers"),
    GatedTable("stg_crm__orders", previous_row_count=_staged_rows("crm", "orders")),
    GatedTable("stg_crm__tickets"),
    GatedTable("stg_iot__devices"),
    GatedTable("stg_iot__readings", previous_row_count=_staged_rows("iot", "readings")),
    GatedTable("stg_import__events"),
)
AUDIT_TABLE = GatedTable("audit_record_counts", frame_sql=REJECT_RATE_SQL)
WAREHOUSE_TABLES = (
    *STAGING_TABLES,
    AUDIT_TABLE,
    GatedTable(
        "fct_events",
        previous_row_count=_rows_of_table("fct_events"),
        upstream=tuple(table.name for table in (*STAGING_TABLES, AUDIT_TABLE)),
    ),
)
PERSONA_TABLES = (
    GatedTable("intent_memories", previous_row_count=_rows_of_table("intent_memories")),
    GatedTable("personas"),
    GatedTable("user_personas", frame_sql=PERSON_WEIGHT_SUM_SQL, upstream=("personas",)),
)


def check_metadata(outcomes: dict[date, "ValidationOutcome"]) -> dict[str, Any]:
    """Counts over the range, and each failed expectation with the day and a few unexpected values."""
    days = sorted(outcomes)
    failures = [(day, failure) for day in days for failure in outcomes[day].failed_expectations]
    return {
        "partition": days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}",
        "evaluated": sum(outcome.evaluated for outcome in outcomes.values()),
        "failed": len(failures),
        "failed_partitions": ", ".join(day.isoformat() for day in days if not outcomes[day].success) or "none",
        "failed_expectations": sorted({failure.name for _, failure in failures}),
        "unexpected_examples": MetadataValue.json(
            {f"{day} {failure.name}": failure.unexpected for day, failure in failures}
        ),
    }


def validate_days(
    connection: DuckDBPyConnection, table: GatedTable, days: list[date]
) -> dict[date, "ValidationOutcome"]:
    """Each day against its own bounds, so a range run checks exactly what day-by-day runs would."""
    # Great Expectations takes ~3 s to import: only the steps that validate pay for it,
    # not every load of the code location.
    from dagster_project.quality.gx_runner import QualityThresholds, suite_parameters, validate_frame

    thresholds = QualityThresholds.from_env()
    outcomes = {}
    for day in days:
        previous = table.previous_row_count(connection, day - timedelta(days=1)) if table.previous_row_count else None
        frame, parameters = table.read_day(connection, day, suite_parameters(day, previous, thresholds))
        outcomes[day] = validate_frame(frame, table.name, parameters, personas_home())
    return outcomes


def build_quality_check(table: GatedTable) -> AssetChecksDefinition:
    @asset_check(
        asset=table.asset_key,
        name=f"gx_{table.name}",
        description=f"Great Expectations suite expectations/{table.name}.json on the partition's rows.",
        blocking=True,
        additional_deps=[AssetKey(name) for name in table.upstream],
        partitions_def=daily_partitions,
        pool=DUCKDB_POOL,
        compute_kind="great_expectations",
        # Requested whenever its asset is, so automation can plan asset, gate and children in one tick.
        automation_condition=AutomationCondition.any_deps_updated(),
    )
    def gx_check(context: AssetCheckExecutionContext, duckdb: DuckDBResource) -> AssetCheckResult:
        first, last = partition_dates(context)
        with duckdb.connect(read_only=True) as connection:
            outcomes = validate_days(connection, table, days_between(first, last))
        return AssetCheckResult(
            passed=all(outcome.success for outcome in outcomes.values()),
            severity=AssetCheckSeverity.ERROR,
            metadata=check_metadata(outcomes),
        )

    return gx_check


quality_checks: list[AssetChecksDefinition] = [build_quality_check(table) for table in WAREHOUSE_TABLES]
"""Gates of the dbt warehouse: add to `Definitions(asset_checks=...)`."""

persona_quality_checks: list[AssetChecksDefinition] = [build_quality_check(table) for table in PERSONA_TABLES]
"""Gates of the persona tables: add once `intent_memories`, `personas` and `user_personas` are assets."""
