"""Great Expectations suites as blocking Dagster asset checks, one per gated table.

Each check reads only the days of the partition range being materialised from DuckDB
(read-only, in the `duckdb` pool) and validates every day on its own against the table's
suite in `expectations/` (timestamps inside that day, volume against the robust trailing
baseline). A failed `critical` expectation fails the check with ERROR severity (blocking);
failed `warning` expectations only fail it with WARN (recorded, nothing blocked).
Thresholds: `gx_runner.QualityThresholds`, from the environment or the `quality_gates`
resource (`QualityGates`), declared once for every gate.

Blocking and multi-asset steps. A blocking check runs as its own step after the step that
produced its asset, and stops the steps that consume that asset. dbt builds every model
in one step, so a check on `stg_web__events` runs after `fct_events` is already built and
cannot stop it. Hence the gate at the warehouse boundary: the `fct_events` check depends
on every staging model and `audit_record_counts`, so a failing staging or reject-rate
check leaves the `fct_events` check unexecuted, and with it everything downstream of
`fct_events` (memories, personas). `user_personas` is gated the same way on `personas`,
which the persona step writes together with it.

Partitions. A run for one day blocks only that day. A single run over a range has one
check step for the whole range: one bad day blocks the range's downstream steps in that
run, so the check's metadata names the blocked days (`failed_partitions`) and the command
that reruns each; `personas run`/`backfill` then rerun the rest of the range around them
(see `dagster_project.operations.ranges`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    ConfigurableResource,
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

    from dagster_project.quality.gx_runner import QualityThresholds, ValidationOutcome

RowCounts = Callable[[DuckDBPyConnection, date, date], dict[date, int]]
"""A table's row count per day over [first, last] (days without rows may be absent)."""


def _rows_of_table(table: str) -> RowCounts:
    def count(connection: DuckDBPyConnection, first: date, last: date) -> dict[date, int]:
        return dict(connection.execute(
            f"select event_date, count(*) from {table} where event_date between ? and ? group by all", [first, last]
        ).fetchall())

    return count


def _staged_rows(source: str, entity: str) -> RowCounts:
    """Staging views hold only the range dbt last built; the audit table keeps every day's count."""

    def count(connection: DuckDBPyConnection, first: date, last: date) -> dict[date, int]:
        return dict(connection.execute(
            "select event_date, staged from audit_record_counts "
            "where source = ? and entity = ? and event_date between ? and ?",
            [source, entity, first, last],
        ).fetchall())

    return count


class QualityGates(ConfigurableResource):
    """The gates' thresholds as Dagster config; unset fields come from the environment (see `gx_runner`).

    Set per run, e.g. `resources: {quality_gates: {config: {dense_sources: [web, iot]}}}`.
    """

    max_reject_rate: float | None = None
    source_reject_rates: dict[str, float] | None = None
    dense_sources: list[str] | None = None
    baseline_days: int | None = None
    min_history_days: int | None = None
    warn_mads: float | None = None
    warn_min_spread: float | None = None
    error_floor_ratio: float | None = None

    def thresholds(self) -> "QualityThresholds":
        from dagster_project.quality.gx_runner import QualityThresholds

        return QualityThresholds.from_env(
            max_reject_rate=self.max_reject_rate,
            source_reject_rates=tuple(sorted(self.source_reject_rates.items())) if self.source_reject_rates else None,
            dense_sources=tuple(self.dense_sources) if self.dense_sources is not None else None,
            baseline_days=self.baseline_days,
            min_history_days=self.min_history_days,
            warn_mads=self.warn_mads,
            warn_min_spread=self.warn_min_spread,
            error_floor_ratio=self.error_floor_ratio,
        )


def _literal_sql(value) -> str:
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(float(value))


def volume_frame_sql(thresholds: "QualityThresholds") -> str:
    """Per source, the day's raw, staged and rejected lines, its reject limit and its volume against the baseline.

    The baseline is the median and scaled MAD (floored at `warn_min_spread` x median) of the
    source's non-empty days among the `baseline_days` before the day; a source with history
    but no line today gets a row of zeros, so a silent dense source fails its floor.
    `volume_floor` is null for sparse sources; `volume_deviation` is the signed distance from
    the median in band widths, its lower side dropped for sparse sources. `$1` is the day.
    """
    limits = ", ".join(
        f"({_literal_sql(source)}, {_literal_sql(rate)})" for source, rate in thresholds.source_reject_rates
    ) or "(null, null)"
    dense = ", ".join(_literal_sql(source) for source in thresholds.dense_sources) or "null"
    return f"""
with today as (
    select source, sum(raw_lines) as raw_lines, sum(staged) as staged, sum(rejected) as rejected
    from audit_record_counts where event_date = $1 group by source
),
history as (
    select source, event_date, sum(raw_lines) as raw_lines from audit_record_counts
    where event_date between $1 - {int(thresholds.baseline_days)} and $1 - 1
    group by all having sum(raw_lines) > 0
),
baseline as (
    select source, count(*) as history_days, median(raw_lines) as baseline_lines,
           greatest(1.4826 * mad(raw_lines), {float(thresholds.warn_min_spread)} * median(raw_lines)) as spread
    from history group by source
),
limits(source, reject_rate_limit) as (values {limits}),
days as (
    select source, $1::date as event_date, coalesce(today.raw_lines, 0) as raw_lines,
           coalesce(today.staged, 0) as staged, coalesce(today.rejected, 0) as rejected,
           coalesce(baseline.history_days, 0) as history_days, baseline.baseline_lines, baseline.spread,
           source in ({dense}) as dense
    from today full join baseline using (source)
)
select source, event_date, raw_lines, staged, rejected,
       rejected / nullif(raw_lines, 0) as reject_rate,
       raw_lines - staged - rejected as unaccounted_lines,
       coalesce(limits.reject_rate_limit, {float(thresholds.max_reject_rate)}) as reject_rate_limit,
       history_days, baseline_lines,
       case when history_days >= {int(thresholds.min_history_days)} then raw_lines / baseline_lines end as volume_ratio,
       case when dense then {float(thresholds.error_floor_ratio)} end as volume_floor,
       case when history_days >= {int(thresholds.min_history_days)} and (dense or raw_lines > baseline_lines)
            then (raw_lines - baseline_lines) / ({float(thresholds.warn_mads)} * spread) end as volume_deviation
from days left join limits using (source)
order by source
"""


@dataclass(frozen=True)
class GatedTable:
    """A table, the suite named after it, the frame it validates for one day, and what it waits for.

    `source`: the audit source the table holds, whose declared sparseness decides whether its
    empty days may block; None for tables of several sources (their sources are gated one by
    one on `audit_record_counts`).
    """

    name: str
    frame_sql: str | Callable[["QualityThresholds"], str] = "select * from {name} where event_date = ?"
    row_counts: RowCounts | None = None
    source: str | None = None
    upstream: tuple[str, ...] = ()

    @property
    def asset_key(self) -> AssetKey:
        return AssetKey(self.name)

    def read_day(
        self, connection: DuckDBPyConnection, day: date, parameters: dict, thresholds: "QualityThresholds"
    ) -> tuple["pd.DataFrame", dict]:
        """The day's frame and suite parameters; a large day is screened in SQL (see `screening`)."""
        from dagster_project.quality.gx_runner import load_suite_expectations
        from dagster_project.quality.screening import sample_rows, scaled_row_count_parameters, screened_frame_sql

        template = self.frame_sql(thresholds) if callable(self.frame_sql) else self.frame_sql
        frame_sql = template.format(name=self.name)
        day_rows = connection.execute(f"select count(*) from ({frame_sql})", [day]).fetchall()[0][0]
        if day_rows <= sample_rows():
            return connection.execute(frame_sql, [day]).df(), parameters
        screened_sql = screened_frame_sql(frame_sql, load_suite_expectations(self.name), parameters, sample_rows())
        frame = connection.execute(screened_sql, [day]).df()
        return frame, scaled_row_count_parameters(parameters, len(frame), day_rows)


PERSON_WEIGHT_SUM_SQL = """
select *, sum(weight) over (partition by person_id) as person_weight_sum
from user_personas where event_date = ?
"""

STAGING_TABLES = (
    GatedTable("stg_web__events", row_counts=_staged_rows("web", "events"), source="web"),
    GatedTable("stg_social__engagements", row_counts=_staged_rows("social", "engagements"), source="social"),
    GatedTable("stg_crm__customers", source="crm"),
    GatedTable("stg_crm__orders", row_counts=_staged_rows("crm", "orders"), source="crm"),
    GatedTable("stg_crm__tickets", source="crm"),
    GatedTable("stg_iot__devices", source="iot"),
    GatedTable("stg_iot__readings", row_counts=_staged_rows("iot", "readings"), source="iot"),
    GatedTable("stg_import__events", source="import"),
)
AUDIT_TABLE = GatedTable("audit_record_counts", frame_sql=volume_frame_sql)
WAREHOUSE_TABLES = (
    *STAGING_TABLES,
    AUDIT_TABLE,
    GatedTable(
        "fct_events",
        row_counts=_rows_of_table("fct_events"),
        upstream=tuple(table.name for table in (*STAGING_TABLES, AUDIT_TABLE)),
    ),
)
PERSONA_TABLES = (
    GatedTable("intent_memories", row_counts=_rows_of_table("intent_memories")),
    GatedTable("personas"),
    GatedTable("user_personas", frame_sql=PERSON_WEIGHT_SUM_SQL, upstream=("personas",)),
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


def check_metadata(outcomes: dict[date, "ValidationOutcome"]) -> dict[str, Any]:
    """Counts over the range; the blocked and the warned days; each failed expectation with a few unexpected values."""
    days = sorted(outcomes)
    failures = [(day, failure) for day in days for failure in outcomes[day].failed_expectations]
    blocked = [day for day in days if outcomes[day].blocking]
    warned = [day for day in days if not outcomes[day].success and not outcomes[day].blocking]
    return {
        "partition": days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}",
        "evaluated": sum(outcome.evaluated for outcome in outcomes.values()),
        "failed": len(failures),
        "failed_partitions": ", ".join(day.isoformat() for day in blocked) or "none",
        "warned_partitions": ", ".join(day.isoformat() for day in warned) or "none",
        "failed_expectations": sorted({failure.name for _, failure in failures if failure.critical}),
        "warned_expectations": sorted({failure.name for _, failure in failures if not failure.critical}),
        "rerun": "; ".join(rerun_commands(blocked)) or "none",
        "unexpected_examples": MetadataValue.json(
            {f"{day} {failure.name}": failure.unexpected for day, failure in failures}
        ),
    }


def validate_days(
    connection: DuckDBPyConnection, table: GatedTable, days: list[date], thresholds: "QualityThresholds"
) -> dict[date, "ValidationOutcome"]:
    """Each day against its own baseline, so a range run checks exactly what day-by-day runs would."""
    # Great Expectations takes ~3 s to import: only the steps that validate pay for it,
    # not every load of the code location.
    from dagster_project.quality.gx_runner import suite_parameters, validate_frame

    window = timedelta(days=thresholds.baseline_days)
    counts = table.row_counts(connection, days[0] - window, days[-1]) if table.row_counts else {}
    sparse = thresholds.is_sparse(table.source)
    outcomes = {}
    for day in days:
        history = [counts.get(day - timedelta(days=back), 0) for back in range(1, thresholds.baseline_days + 1)]
        parameters = suite_parameters(day, history if table.row_counts else None, thresholds, sparse)
        frame, parameters = table.read_day(connection, day, parameters, thresholds)
        outcomes[day] = validate_frame(frame, table.name, parameters, personas_home())
    return outcomes


QUALITY_GATES_RESOURCE = "quality_gates"
_default_gates = QualityGates()


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
        resource_defs={QUALITY_GATES_RESOURCE: _default_gates},
    )
    def gx_check(
        context: AssetCheckExecutionContext, duckdb: DuckDBResource, quality_gates: QualityGates
    ) -> AssetCheckResult:
        first, last = partition_dates(context)
        thresholds = quality_gates.thresholds()
        with duckdb.connect(read_only=True) as connection:
            outcomes = validate_days(connection, table, days_between(first, last), thresholds)
        blocking = any(outcome.blocking for outcome in outcomes.values())
        return AssetCheckResult(
            passed=all(outcome.success for outcome in outcomes.values()),
            severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
            metadata=check_metadata(outcomes),
        )

    return gx_check


quality_checks: list[AssetChecksDefinition] = [build_quality_check(table) for table in WAREHOUSE_TABLES]
"""Gates of the dbt warehouse: add to `Definitions(asset_checks=...)`."""

persona_quality_checks: list[AssetChecksDefinition] = [build_quality_check(table) for table in PERSONA_TABLES]
"""Gates of the persona tables: add once `intent_memories`, `personas` and `user_personas` are assets."""
