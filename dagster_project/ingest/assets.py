"""Landing files -> raw line tables in DuckDB (`raw.<source>__<entity>`), one asset per entity."""

from collections import Counter

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, multi_asset

from dagster_project.ingest.landing import LANDING_ENTITIES, read_landing_days
from dagster_project.partitions import daily_partitions, days_between, partition_dates, single_run_backfill
from dagster_project.paths import landing_dir, personas_home
from dagster_project.privacy.suppression import drop_suppressed_lines
from dagster_project.resources.duckdb import DUCKDB_POOL, DuckDBResource
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
        owners=["team:data-platform"],
        metadata={"path_pattern": f"landing/{entity.source}/{entity.entity}/<YYYY-MM-DD>.{entity.extension}"},
    )
    for entity in LANDING_ENTITIES
]


@multi_asset(
    specs=[
        AssetSpec(
            raw_key(entity.table),
            deps=[landing_key(entity.table)],
            description=f"Every line of the {entity.source} {entity.entity} landing files with its file and line number.",
            group_name="raw",
            kinds={"duckdb", "polars"},
            owners=["team:data-platform"],
            partitions_def=daily_partitions,
            skippable=False,
            code_version="1",
        )
        for entity in LANDING_ENTITIES
    ],
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
)
def raw_landing_lines(context: AssetExecutionContext, duckdb: DuckDBResource):
    """Loads the partition's landing files line by line; a missing file loads zero lines."""
    home = personas_home()
    first, last = partition_dates(context)
    with duckdb.connect() as connection:
        days = days_between(first, last)
        for entity in LANDING_ENTITIES:
            lines, missing = read_landing_days(landing_dir(home), entity, days, home)
            lines, suppressed = drop_suppressed_lines(connection, entity, lines)
            replace_partition_rows(connection, f"raw.{entity.table}", lines, first, last, zstd_columns=("raw",))
            flags = Counter(bad_encoding=int(lines["bad_encoding"].sum()),
                            oversized_lines=int(lines["oversized"].sum()), erased_person_lines_dropped=suppressed)
            if "malformed" in lines.columns:
                flags["malformed_csv_lines"] = int(lines["malformed"].sum())
            if missing:
                context.log.warning(f"No {entity.table} landing file for {', '.join(map(str, missing))}")
            yield MaterializeResult(
                asset_key=raw_key(entity.table),
                metadata={
                    "dagster/row_count": lines.height,
                    "files": len(days) - len(missing),
                    "missing_days": ", ".join(map(str, missing)) or "none",
                    **flags,
                },
            )
