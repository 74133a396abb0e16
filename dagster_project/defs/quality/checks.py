"""Great Expectations suites as blocking Dagster asset checks, one per gated table.

Each check reads only the days of the partition range being materialised from DuckDB
(read-only, in the `duckdb` pool) and judges every day on its own against the table's suite
in `expectations/` (timestamps inside that day, volume against the robust trailing
baseline), in one pass over the range: one SQL screen of all its days, and Great Expectations
on the days that need it (see `validate_days`), so a 200-day range costs about what one day
does. A failed `critical` expectation fails the check with ERROR severity (blocking); failed
`warning` expectations only fail it with WARN (recorded, nothing blocked).
Thresholds: `quality.thresholds.QualityThresholds` declares each once (default, environment
variable, meaning); every gate reads them from the Dagster config of the shared `quality_gates`
resource (`QualityGates`, made from that dataclass as drift and fairness make theirs).

Blocking and multi-asset steps. A blocking check runs as its own step after the step that
produced its asset, and stops the steps that consume that asset. dbt builds every model
in one step, so a check on `stg_web__events` runs after `fct_events` is already built and
cannot stop it. Hence the gate at the warehouse boundary: the `fct_events` check depends
on every staging model and `audit_record_counts`, so a failing staging or reject-rate
check leaves the `fct_events` check unexecuted, and with it everything downstream of
`fct_events` (memories, personas). `user_personas` is gated the same way on `personas`,
which the persona step writes together with it.

Partitions. A run for one day blocks only that day. A single run over a range has one
check step for the whole range, which records one evaluation per day with that day's own
verdict and metadata (so the UI shows each day Passed or Failed; see `metadata.py`). One
bad day still blocks the range's downstream steps in that run, so a blocked day's
evaluation names it (`failed_partitions`) and the command that reruns it; `personas
run`/`backfill` then rerun the rest of the range around them (see
`dagster_project.operations.ranges`). `summary.gate_verdicts` folds the days back into one
line per gate for the command line.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AutomationCondition,
    ConfigurableResource,
    MetadataValue,
    Output,
    asset_check,
)
from duckdb import DuckDBPyConnection

from dagster_project.metadata import day_check_evaluations
from dagster_project.partitions import daily_partitions, days_between, partition_dates
from dagster_project.paths import personas_home
from dagster_project.quality.thresholds import QualityThresholds
from dagster_project.resources.duckdb import DUCKDB_POOL, DuckDBResource
from dagster_project.run_config import config_from_settings, config_values, settings_from_config
from dagster_project.summary import rerun_commands

if TYPE_CHECKING:
    from dagster_project.quality.gx_runner import ValidationOutcome

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


QualityGates = config_from_settings(
    "QualityGates", QualityThresholds,
    "Every gate's thresholds (`QualityThresholds`), shared by the 13 gates; set per run, e.g. "
    "`resources: {quality_gates: {config: {dense_sources: [web, iot], source_reject_rates: {crm: 0.1}}}}`.",
    base=ConfigurableResource,
)


def _literal_sql(value) -> str:
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(float(value))


def volume_frame_sql(thresholds: QualityThresholds) -> str:
    """Per source and day of [$1, $2]: raw, staged and rejected lines, the reject limit and the volume against the baseline.

    A day's baseline is the median and scaled MAD (floored at `warn_min_spread` x median) of
    the source's non-empty days among the `baseline_days` before it; a source with history
    but no line that day gets a row of zeros, so a silent dense source fails its floor.
    `volume_floor` is null for sparse sources; `volume_deviation` is the signed distance from
    the median in band widths, its lower side dropped for sparse sources.
    """
    limits = ", ".join(
        f"({_literal_sql(source)}, {_literal_sql(rate)})" for source, rate in thresholds.source_reject_rates
    ) or "(null::varchar, null::double)"
    dense = ", ".join(_literal_sql(source) for source in thresholds.dense_sources) or "null::varchar"
    return f"""
with daily as (
    select source, event_date, sum(raw_lines) as raw_lines, sum(staged) as staged, sum(rejected) as rejected
    from audit_record_counts where event_date between $1::date - {int(thresholds.baseline_days)} and $2::date
    group by all
),
today as (select * from daily where event_date between $1 and $2),
range_days as (select unnest(generate_series($1::date, $2::date, interval 1 day))::date as event_date),
history as (
    select range_days.event_date, daily.source, daily.raw_lines
    from range_days join daily
      on daily.event_date between range_days.event_date - {int(thresholds.baseline_days)} and range_days.event_date - 1
    where daily.raw_lines > 0
),
baseline as (
    select source, event_date, count(*) as history_days, median(raw_lines) as baseline_lines,
           greatest(1.4826 * mad(raw_lines), {float(thresholds.warn_min_spread)} * median(raw_lines)) as spread
    from history group by source, event_date
),
limits(source, reject_rate_limit) as (values {limits}),
days as (
    select source, event_date, coalesce(today.raw_lines, 0) as raw_lines,
           coalesce(today.staged, 0) as staged, coalesce(today.rejected, 0) as rejected,
           coalesce(baseline.history_days, 0) as history_days, baseline.baseline_lines, baseline.spread,
           source in ({dense}) as dense
    from today full join baseline using (source, event_date)
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
order by event_date, source
"""


@dataclass(frozen=True)
class GatedTable:
    """A table, the suite named after it, the frame it validates over the days [$1, $2], and what it waits for.

    `source`: the audit source the table holds, whose declared sparseness decides whether its
    empty days may block; None for tables of several sources (their sources are gated one by
    one on `audit_record_counts`).
    """

    name: str
    frame_sql: str | Callable[[QualityThresholds], str] = "select * from {name} where event_date between $1 and $2"
    row_counts: RowCounts | None = None
    source: str | None = None
    upstream: tuple[str, ...] = ()

    @property
    def asset_key(self) -> AssetKey:
        return AssetKey(self.name)

    def range_frame_sql(self, thresholds: QualityThresholds) -> str:
        template = self.frame_sql(thresholds) if callable(self.frame_sql) else self.frame_sql
        return template.format(name=self.name)


PERSON_WEIGHT_SUM_SQL = """
select *, sum(weight) over (partition by event_date, person_id) as person_weight_sum
from user_personas where event_date between $1 and $2
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


def check_metadata(day: date, outcome: "ValidationOutcome") -> dict[str, Any]:
    """One day's verdict: counts, whether it blocked or warned, each failed expectation with a few unexpected values.

    A gate records one evaluation per day; `summary.gate_verdicts` folds a run's days back together.
    """
    failures = outcome.failed_expectations
    return {
        "partition": day.isoformat(),
        "evaluated": outcome.evaluated,
        "gx_validated_partitions": int(outcome.by_gx),
        "failed": len(failures),
        "failed_partitions": day.isoformat() if outcome.blocking else "none",
        "warned_partitions": day.isoformat() if not outcome.success and not outcome.blocking else "none",
        "failed_expectations": sorted({failure.name for failure in failures if failure.critical}),
        "warned_expectations": sorted({failure.name for failure in failures if not failure.critical}),
        "rerun": "; ".join(rerun_commands([day] if outcome.blocking else [])) or "none",
        "unexpected_examples": MetadataValue.json({f"{day} {failure.name}": failure.unexpected for failure in failures}),
    }


def validate_days(
    connection: DuckDBPyConnection, table: GatedTable, days: list[date], thresholds: QualityThresholds
) -> dict[date, "ValidationOutcome"]:
    """Each day against its own baseline and bounds, so a range run checks exactly what day-by-day runs would.

    One pass over the range: a count per day, then (if more than one day has rows) one SQL screen
    of every day. Great Expectations validates only the days with a suspect row or a row count
    out of bounds, plus the newest day with rows (see `screening`); every other day passed every
    expectation in the screen. A table without rows in the range costs one count.
    """
    # Great Expectations takes ~3 s to import: only the steps that validate pay for it,
    # not every load of the code location.
    from dagster_project.quality.gx_runner import load_suite_expectations, passed, suite_parameters, validate_frame
    from dagster_project.quality.screening import (
        row_count_violated,
        scaled_row_count_parameters,
        screened_frame_sql,
        suspect_counts_sql,
    )

    first, last = min(days), max(days)
    window = timedelta(days=thresholds.baseline_days)
    counts = table.row_counts(connection, first - window, last) if table.row_counts else {}
    sparse = thresholds.is_sparse(table.source)

    def parameters_of(day: date) -> dict:
        history = [counts.get(day - timedelta(days=back), 0) for back in range(1, thresholds.baseline_days + 1)]
        return suite_parameters(day, history if table.row_counts else None, thresholds, sparse)

    parameters = {day: parameters_of(day) for day in days}
    expectations = load_suite_expectations(table.name)
    frame_sql = table.range_frame_sql(thresholds)
    day_rows = dict(connection.execute(
        f"select event_date, count(*) from ({frame_sql}) group by event_date", [first, last]).fetchall())
    with_rows = sorted(day for day in days if day_rows.get(day))
    suspects = {}
    if len(with_rows) > 1:
        suspects = {day: suspect for day, _, suspect in connection.execute(
            suspect_counts_sql(frame_sql, expectations, "event_date"), [first, last]).fetchall()}
    validated = sorted(set(with_rows[-1:]) | {
        day for day in days
        if suspects.get(day) or row_count_violated(expectations, parameters[day], day_rows.get(day, 0))
    })
    outcomes = {day: passed(table.name, len(expectations)) for day in days}
    if not validated:
        return outcomes
    day_list = ", ".join(f"date '{day.isoformat()}'" for day in validated)
    frames = connection.execute(screened_frame_sql(
        f"select * from ({frame_sql}) where event_date in ({day_list})", expectations, thresholds.sample_rows, "event_date"
    ), [first, last]).df()
    frame_days = frames["event_date"].map(lambda value: value.date() if hasattr(value, "date") else value)
    for day in validated:
        frame = frames[frame_days == day].reset_index(drop=True)
        day_parameters = scaled_row_count_parameters(parameters[day], len(frame), day_rows.get(day, 0))
        outcomes[day] = validate_frame(frame, table.name, day_parameters, personas_home())
    return outcomes


QUALITY_GATES_RESOURCE = "quality_gates"
# The launchpad's defaults: the dataclass's, each replaced by its PERSONAS_GX_* variable when the code location loads.
_default_gates = QualityGates(**config_values(QualityThresholds.from_env()))


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
    ) -> Iterator[Output | AssetCheckEvaluation]:
        first, last = partition_dates(context)
        thresholds = settings_from_config(quality_gates, QualityThresholds)
        with duckdb.connect(read_only=True) as connection:
            outcomes = validate_days(connection, table, days_between(first, last), thresholds)
        yield from day_check_evaluations(context, AssetCheckKey(table.asset_key, f"gx_{table.name}"), {
            day: (outcome.success, AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
                  check_metadata(day, outcome))
            for day, outcome in outcomes.items()
        }, blocking=True)

    return gx_check


quality_checks: list[AssetChecksDefinition] = [build_quality_check(table) for table in WAREHOUSE_TABLES]
"""Gates of the dbt warehouse; `load_from_defs_folder` picks up this module-level list."""

persona_quality_checks: list[AssetChecksDefinition] = [build_quality_check(table) for table in PERSONA_TABLES]
"""Gates of the persona tables (`intent_memories`, `personas`, `user_personas`), loaded the same way."""
