"""What each day's materialisation and check evaluation in the Dagster UI says about that day.

A ranged run (a single-run backfill, `personas run --start A --end B`) materialises every day
of the range in one step. The metadata a step returns lands on every day's materialisation,
so each day would show the whole range's values (dagster issues 18123, 21072, 29846).
`context.add_asset_metadata(..., partition_key=day)` scopes metadata to one day's
materialisation instead: `day_metadata` hands each day its own values (rounded: a UI
field, not a float dump). A check result (`AssetCheckResult`) of a ranged step has no
partition; `day_check_evaluations` records one evaluation per day, tied to that day's
materialisation, so every day of a partitioned check (the GX gates; the drift, KPI and fairness
checks, whose specs carry `partitions_def`) shows Passed or Failed on its own.
"""

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    FloatMetadataValue,
    JsonMetadataValue,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from dagster_project.warehouse import column_types

SIGNIFICANT_DIGITS = 4


def rounded(value: Any) -> Any:
    """Floats to 4 significant digits (0.8251735629318994 -> 0.8252), inside lists and dicts too."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if type(value) is dict:  # plain containers only: metadata values and schemas are records
        return {key: rounded(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return [rounded(item) for item in value]
    return value


def rounded_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Every float of a metadata mapping rounded, float and JSON metadata values included."""
    def rounded_value(value: Any) -> Any:
        if isinstance(value, FloatMetadataValue) and value.value is not None:
            return MetadataValue.float(rounded(value.value))
        if isinstance(value, JsonMetadataValue):
            return MetadataValue.json(rounded(value.value))
        return rounded(value)

    return {key: rounded_value(value) for key, value in metadata.items()}


def column_schema(frame: pl.DataFrame) -> TableSchema:
    """`dagster/column_schema` of a table written from `frame`: the DuckDB types `replace_partition_rows` creates
    it with, so Python-written and dbt tables read alike."""
    return TableSchema(columns=[TableColumn(name=name, type=column_type)
                                for name, column_type in column_types(frame).items()])


def day_metadata(
    context: AssetExecutionContext, by_day: Mapping[date, Mapping[str, Any]], asset_key: str | AssetKey | None = None
) -> None:
    """Attach each day's own metadata to that day's materialisation of the step's range (rounded)."""
    for day, metadata in by_day.items():
        context.add_asset_metadata(rounded_metadata(metadata), asset_key=asset_key, partition_key=day.isoformat())


def latest_materializations(instance, asset_key: AssetKey, days: list[date]) -> dict[str, Any]:
    """Each day's latest materialisation record of `asset_key` (days never materialised are absent), paging on
    until every day is found: a day materialised many times cannot push the other days off the first page."""
    wanted = {day.isoformat() for day in days}
    latest: dict[str, Any] = {}
    cursor = None
    while wanted - latest.keys():
        page = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, asset_partitions=sorted(wanted - latest.keys())),
            limit=max(100, 2 * len(wanted)), cursor=cursor,
        )
        for record in page.records:  # newest first
            latest.setdefault(record.partition_key, record)
        if not page.has_more:
            break
        cursor = page.cursor
    return latest


def day_check_evaluations(
    context, check_key: AssetCheckKey, verdicts: Mapping[date, tuple[bool, AssetCheckSeverity, Mapping[str, Any]]],
    blocking: bool,
) -> Iterator[Output | AssetCheckEvaluation]:
    """The check's output, then one evaluation per day (passed, severity, metadata), each pointing at the
    day's latest materialisation: the UI keeps a day's verdict until that day is materialised again.

    A failed day at ERROR severity of a `blocking` check fails the step after every day is recorded.
    """
    assets_def = context.op_execution_context.assets_def
    yield Output(None, output_name=assets_def.get_output_name_for_asset_check_key(check_key))
    targets = latest_materializations(context.instance, check_key.asset_key, list(verdicts))
    for day, (passed, severity, metadata) in sorted(verdicts.items()):
        target = targets.get(day.isoformat())
        yield AssetCheckEvaluation(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=passed,
            severity=severity,
            metadata=rounded_metadata(metadata),
            blocking=blocking,
            partition=day.isoformat(),
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=target.storage_id, run_id=target.run_id, timestamp=target.timestamp,
            ) if target else None,
        )
