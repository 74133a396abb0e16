"""`champion_model`: the registry's `champion` alias, moved to a day's model once that day is trusted.

The asset runs after `personas`, `user_personas` and `persona_drift`, so every blocking
check on them (the Great Expectations gates `gx_personas` and `gx_user_personas`) must pass
before this step runs: a failed gate stops it and the alias stays on the last trusted day.
The step then applies the fit's own sanity recorded on the version and the drift reviews
(`registry`): a day whose drift breached, and every day after it, waits for
`personas review approve DAY`.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from dagster_project.asset_defaults import daily_asset
from dagster_project.partitions import days_between, partition_dates
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.review.store import read_reviews
from dagster_project.tracking.registry import (
    PARTITION_DATE_TAG,
    current_champion,
    open_reviews_of_newest,
    promote_days,
    release_held,
)
from dagster_project.tracking.resource import MlflowTracking


@daily_asset(
    __name__,
    deps=["personas", "user_personas", "persona_drift"],
    group_name="monitoring",
    kinds={"mlflow"},
    description="Moves the `champion` alias of the registered model `persona-model` to each day's version "
    "whose fit passed its sanity (every persona labelled from its evidence, at least two personas) and whose "
    "upstream blocking checks passed; never back to an older day. A day whose drift breached its thresholds, "
    "and every day after it, waits until `personas review approve DAY`.",
)
def champion_model(context: AssetExecutionContext, duckdb: DuckDBResource, mlflow: MlflowTracking) -> MaterializeResult:
    first, last = partition_dates(context)
    store = mlflow.store()
    with duckdb.connect() as connection:
        reviews = read_reviews(connection)
    promotions = promote_days(store, days_between(first, last), reviews)
    # A rerun that cleared an earlier review's day lets the days it held through.
    promotions.update(release_held(store, reviews, after=last))
    for day, promotion in promotions.items():
        context.log.info(f"{day}: version {promotion.version} {promotion.decision}: {promotion.reason}")
    champion = current_champion(store)
    promoted = [day.isoformat() for day, promotion in promotions.items() if promotion.promoted]
    return MaterializeResult(metadata={
        "champion_version": champion.version if champion else "none",
        "champion_partition_date": champion.tags[PARTITION_DATE_TAG] if champion else "none",
        "promoted_days": ", ".join(promoted) or "none",
        "held_days": ", ".join(day.isoformat() for day, promotion in promotions.items() if promotion.held) or "none",
        "open_reviews": ", ".join(
            f"{review.day} v{review.version} {review.status}" for review in open_reviews_of_newest(store, reviews)
        ) or "none",
        "decisions": MetadataValue.json({
            day.isoformat(): {"version": promotion.version, "decision": promotion.decision, "reason": promotion.reason}
            for day, promotion in promotions.items()
        }),
    })
