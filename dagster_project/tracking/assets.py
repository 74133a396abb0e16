"""`champion_model`: the registry's `champion` alias, moved to a day's model once that day is trusted.

The asset runs after `personas` and `user_personas`, so every blocking check on them
(the Great Expectations gates `gx_personas` and `gx_user_personas`) must pass before
this step runs: a failed gate stops it and the alias stays on the last trusted day.
The step then applies the fit's own sanity recorded on the version (`registry`).
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from dagster_project.partitions import daily_partitions, days_between, partition_dates, single_run_backfill
from dagster_project.personas.assets import OWNERS
from dagster_project.resources.duckdb import DUCKDB_POOL
from dagster_project.tracking.registry import PARTITION_DATE_TAG, current_champion, promote_day
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.operations.automation import rerun_on_upstream_change


@asset(
    automation_condition=rerun_on_upstream_change,
    code_version="1",
    deps=["personas", "user_personas"],
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
    group_name="monitoring",
    kinds={"mlflow"},
    owners=OWNERS,
    description="Moves the `champion` alias of the registered model `persona-model` to each day's version "
    "whose fit passed its sanity (every persona labelled from its evidence, at least two personas) and whose "
    "upstream blocking checks passed; never back to an older day.",
)
def champion_model(context: AssetExecutionContext, mlflow: MlflowTracking) -> MaterializeResult:
    first, last = partition_dates(context)
    promotions = {day: promote_day(mlflow, day) for day in days_between(first, last)}
    for day, promotion in promotions.items():
        outcome = "promoted" if promotion.promoted else "not promoted"
        context.log.info(f"{day}: version {promotion.version} {outcome}: {promotion.reason}")
    champion = current_champion(mlflow)
    promoted = [day.isoformat() for day, promotion in promotions.items() if promotion.promoted]
    return MaterializeResult(metadata={
        "champion_version": champion.version if champion else "none",
        "champion_partition_date": champion.tags[PARTITION_DATE_TAG] if champion else "none",
        "promoted_days": ", ".join(promoted) or "none",
        "decisions": MetadataValue.json({
            day.isoformat(): {"version": promotion.version, "promoted": promotion.promoted, "reason": promotion.reason}
            for day, promotion in promotions.items()
        }),
    })
