"""`persona_fairness`: each persona's mix of CRM regions and age bands against the population's.

Reads the day's `user_personas` and the persons' CRM attributes (`dim_persons`), calls the
pure `science.fairness`, writes one row per model date, persona, attribute and value, and
reports a non-blocking check (severity WARN), one verdict per day, naming every persona whose
share of a region or age band is more than `max_gap_points` from the population's: a skewed persona is a
reason to look at how it is used, not to stop the pipeline.
"""

from collections.abc import Iterator
from datetime import date

import duckdb
import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    Output,
)

from dagster_project.asset_defaults import daily_asset
from dagster_project.markdown import markdown_table
from dagster_project.metadata import column_schema, day_check_evaluations, day_metadata
from dagster_project.partitions import daily_partitions, days_between, partition_dates
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.run_config import config_from_settings, settings_from_config
from dagster_project.science.fairness import FairnessSettings, fairness_gaps
from dagster_project.warehouse import read_frame, replace_partition_rows, table_exists

FAIRNESS_CHECK_NAME = "persona_fairness_within_gap"
DEFAULT_SETTINGS = FairnessSettings()


PersonaFairnessConfig = config_from_settings(
    "PersonaFairnessConfig", FairnessSettings,
    "A gap above `max_gap_points` percentage points and `min_z` standard errors flags the persona.",
)


@daily_asset(
    __name__,
    deps=["user_personas", "personas", AssetKey("dim_persons")],
    check_specs=[AssetCheckSpec(
        FAIRNESS_CHECK_NAME, asset="persona_fairness", blocking=False, partitions_def=daily_partitions,
        description="Warns when a persona's share of a CRM region or age band is further from the population's "
        "than the run config allows: more than `max_gap_points` percentage points "
        f"(default {DEFAULT_SETTINGS.max_gap_points:g}) and `min_z` standard errors "
        f"(default {DEFAULT_SETTINGS.min_z:g}); names the personas, values and shares.",
    )],
    group_name="monitoring",
    kinds={"duckdb", "polars"},
    description="Per model date and persona: the share of each CRM region and age band against the population "
    "of people with personas that day, and the gap in percentage points.",
)
def persona_fairness(
    context: AssetExecutionContext, config: PersonaFairnessConfig, duckdb: DuckDBResource
) -> Iterator[MaterializeResult | Output | AssetCheckEvaluation]:
    first, last = partition_dates(context)
    settings = settings_from_config(config, FairnessSettings)
    check_key = AssetCheckKey(context.asset_key, FAIRNESS_CHECK_NAME)
    with duckdb.connect() as connection:
        gaps = _gaps(connection, first, last, settings)
        if not gaps.is_empty():
            replace_partition_rows(connection, "main.persona_fairness", gaps, first, last)
        elif table_exists(connection, "persona_fairness"):  # rows of an earlier run of the range no longer hold
            connection.execute("delete from persona_fairness where event_date between ? and ?", [first, last])
    if gaps.is_empty():
        context.log.warning(f"No person with personas and CRM attributes in {first}..{last}: nothing to audit")
        yield MaterializeResult(metadata={"dagster/row_count": 0})
        yield from day_check_evaluations(context, check_key, {
            day: (True, AssetCheckSeverity.WARN, {"breached": "none", "audited": "no: no person with CRM attributes"})
            for day in days_between(first, last)
        }, blocking=False)
        return
    flagged = gaps.filter("flagged").sort("event_date", pl.col("gap_points").abs(), descending=[False, True])
    by_day = {day: day_gaps for (day,), day_gaps in gaps.group_by("event_date")}
    day_metadata(context, {
        day: {"dagster/row_count": 0} if day not in by_day else {
            "dagster/row_count": by_day[day].height,
            "largest_gap_points": float(by_day[day]["gap_points"].abs().max()),
            "flagged_rows": int(by_day[day]["flagged"].sum()),
            "largest_gaps": MetadataValue.md(
                _gap_table(by_day[day].sort(pl.col("gap_points").abs(), descending=True).head(10))),
        }
        for day in days_between(first, last)
    })
    yield MaterializeResult(metadata={"dagster/column_schema": column_schema(gaps)})
    yield from day_check_evaluations(context, check_key, {
        day: _day_verdict(flagged.filter(pl.col("event_date") == day), settings.max_gap_points)
        for day in days_between(first, last)
    }, blocking=False)


def _day_verdict(flagged: pl.DataFrame, max_gap_points: float) -> tuple[bool, AssetCheckSeverity, dict]:
    """A model date's fairness verdict: the personas flagged, and each flagged value's share against the population's."""
    return flagged.is_empty(), AssetCheckSeverity.WARN, {
        "breached": ", ".join(sorted({f"persona {row['persona_id']} ({row['label']})"
                                      for row in flagged.iter_rows(named=True)})) or "none",
        "flagged_rows": flagged.height,
        "gaps": MetadataValue.json({
            f"persona {row['persona_id']} {row['attribute']}={row['value']}":
            f"{row['persona_share']:.1%} vs population {row['population_share']:.1%} ({row['gap_points']:+.1f} points)"
            for row in flagged.iter_rows(named=True)
        }),
        "max_gap_points": max_gap_points,
    }


def _gaps(connection: duckdb.DuckDBPyConnection, first: date, last: date, settings: FairnessSettings) -> pl.DataFrame:
    """The range's gaps with persona labels; empty before the first persona fit or without CRM attributes."""
    if not table_exists(connection, "user_personas"):
        return pl.DataFrame()
    memberships = read_frame(
        connection, "select event_date, person_id, persona_id, weight from user_personas where event_date between ? and ?",
        [first, last],
    )
    attributes = read_frame(connection, "select person_id, region, age_band from dim_persons")
    labels = read_frame(
        connection, "select event_date, persona_id, label from personas where event_date between ? and ?", [first, last]
    )
    return fairness_gaps(memberships, attributes, settings).join(labels, on=["event_date", "persona_id"], how="left")


def _gap_table(gaps: pl.DataFrame) -> str:
    return markdown_table(
        ["day", "persona", "attribute", "value", "persona share", "population share", "gap (points)", "flagged"],
        [
            [row["event_date"], f"{row['persona_id']} {row['label']}", row["attribute"], row["value"],
             f"{row['persona_share']:.1%}", f"{row['population_share']:.1%}", f"{row['gap_points']:+.1f}",
             "yes" if row["flagged"] else ""]
            for row in gaps.iter_rows(named=True)
        ],
    )
