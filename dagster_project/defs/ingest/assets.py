"""Landing files -> raw line tables in DuckDB (`raw.<source>__<entity>`), one asset per entity."""

from datetime import date

import polars as pl
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, multi_asset

from dagster_project.asset_defaults import DAILY_STEP, DATA_PLATFORM
from dagster_project.code_version import code_version
from dagster_project.ingest.landing import LANDING_ENTITIES, read_landing_days
from dagster_project.metadata import column_schema, day_metadata
from dagster_project.partitions import days_between, partition_dates
from dagster_project.paths import landing_dir, personas_home
from dagster_project.privacy.suppression import drop_suppressed_lines
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.warehouse import replace_partition_rows


def landing_key(table: str) -> AssetKey:
    return AssetKey(["landing", table])


def raw_key(table: str) -> AssetKey:
    return AssetKey(["raw", table])


landing_specs = [
    AssetSpec(
        landing_key(entity.table),
        description=f"Daily {entity.extension.upper()} files dropped by the {entity.source} source "
        f"under landing/{entity.source}/{entity.entity}/.",
        group_name="landing",
        kinds={"file", entity.extension},
        owners=DATA_PLATFORM,
        metadata={"path_pattern": f"landing/{entity.source}/{entity.entity}/<YYYY-MM-DD>.{entity.extension}"},
    )
    for entity in LANDING_ENTITIES
]


RAW_CODE_VERSION = code_version(__name__)


@multi_asset(
    specs=[
        AssetSpec(
            raw_key(entity.table),
            deps=[landing_key(entity.table)],
            description=f"Every line of the {entity.source} {entity.entity} landing files with its file and line number.",
            group_name="raw",
            kinds={"duckdb", "polars"},
            owners=DATA_PLATFORM,
            skippable=False,
            code_version=RAW_CODE_VERSION,
        )
        for entity in LANDING_ENTITIES
    ],
    **DAILY_STEP,
)
def raw_landing_lines(context: AssetExecutionContext, duckdb: DuckDBResource):
    """Loads the partition's landing files line by line; a missing file loads zero lines."""
    home = personas_home()
    first, last = partition_dates(context)
    with duckdb.connect() as connection:
        days = days_between(first, last)
        for entity in LANDING_ENTITIES:
            received, missing = read_landing_days(landing_dir(home), entity, days, home)
            lines, _ = drop_suppressed_lines(connection, entity, received)
            replace_partition_rows(connection, f"raw.{entity.table}", lines, first, last, zstd_columns=("raw",))
            if missing:
                context.log.warning(f"No {entity.table} landing file for {', '.join(map(str, missing))}")
            day_metadata(context, day_line_counts(received, lines, days, missing), asset_key=raw_key(entity.table))
            yield MaterializeResult(asset_key=raw_key(entity.table),
                                    metadata={"dagster/column_schema": column_schema(lines)})


LINE_FLAGS = {"bad_encoding": "bad_encoding", "oversized": "oversized_lines", "malformed": "malformed_csv_lines"}


def day_line_counts(
    received: pl.DataFrame, kept: pl.DataFrame, days: list[date], missing: list[date]
) -> dict[date, dict[str, int | bool]]:
    """Each day's own raw load: whether its file came, the lines kept, the flagged ones, and those of erased
    persons dropped (`received` before the drop, `kept` after)."""
    flags = [pl.col(column).sum().alias(name) for column, name in LINE_FLAGS.items() if column in kept.columns]
    per_day = (
        pl.DataFrame({"event_date": days}, schema={"event_date": pl.Date})
        .join(kept.group_by("event_date").agg(pl.len().alias("dagster/row_count"), *flags), on="event_date", how="left")
        .join(received.group_by("event_date").agg(pl.len().alias("received")), on="event_date", how="left")
        .with_columns(pl.exclude("event_date").fill_null(0))
        .with_columns(file_received=~pl.col("event_date").is_in(missing),
                      erased_person_lines_dropped=pl.col("received") - pl.col("dagster/row_count"))
        .drop("received")
    )
    return {row.pop("event_date"): row for row in per_day.iter_rows(named=True)}
