"""Registered model `persona-model`: one version per fitted day, and the `champion` alias.

Each version carries its partition date and the fit's own sanity as tags. The alias
moves only through `promote_day`, which the `champion_model` asset calls once the checks
upstream of it have passed; a version that fails its sanity, or is older than the
current champion (a backfill of past days), leaves the alias where it is.
"""

from dataclasses import dataclass
from datetime import date

import mlflow
from mlflow.entities.model_registry import ModelVersion

from dagster_project.tracking.resource import MlflowTracking

PARTITION_DATE_TAG = "partition_date"
SANITY_TAG = "fit_sanity_passed"
CHAMPION_ALIAS = "champion"


def register_day_model(tracking: MlflowTracking, model_uri: str, day: date, sanity_passed: bool) -> ModelVersion:
    """A new version of the registered model (created on first use) for a logged model."""
    tracking.activate()
    return mlflow.register_model(
        model_uri,
        tracking.registered_model_name,
        tags={PARTITION_DATE_TAG: day.isoformat(), SANITY_TAG: str(sanity_passed).lower()},
    )


def champion_uri(tracking: MlflowTracking) -> str:
    """What `mlflow.pyfunc.load_model` takes once `tracking.activate()` has pointed MLflow at the home."""
    return f"models:/{tracking.registered_model_name}@{CHAMPION_ALIAS}"


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    version: str | None
    reason: str


def champion_decision(candidate: ModelVersion | None, champion: ModelVersion | None) -> Promotion:
    """Whether the day's newest version should become the champion, and why (not)."""
    if candidate is None:
        return Promotion(False, None, "no model version was registered for this day")
    if candidate.tags.get(SANITY_TAG) != "true":
        return Promotion(False, candidate.version, "the fit's sanity failed (see fit_sanity.txt in its run)")
    if champion is not None and champion.tags[PARTITION_DATE_TAG] > candidate.tags[PARTITION_DATE_TAG]:
        return Promotion(
            False, candidate.version,
            f"champion version {champion.version} is of a later day ({champion.tags[PARTITION_DATE_TAG]})",
        )
    return Promotion(True, candidate.version, "fit sanity and upstream checks passed")


def day_version(tracking: MlflowTracking, day: date) -> ModelVersion | None:
    """The newest version of the day: a rerun of a day registers another one."""
    versions = tracking.client().search_model_versions(
        f"name = '{tracking.registered_model_name}' and tags.{PARTITION_DATE_TAG} = '{day.isoformat()}'"
    )
    return max(versions, key=lambda version: int(version.version), default=None)


def current_champion(tracking: MlflowTracking) -> ModelVersion | None:
    """The version the alias points at; None before the model or the alias exists."""
    client = tracking.client()
    if not client.search_registered_models(f"name = '{tracking.registered_model_name}'"):
        return None
    aliases = client.get_registered_model(tracking.registered_model_name).aliases
    if CHAMPION_ALIAS not in aliases:
        return None
    return client.get_model_version(tracking.registered_model_name, aliases[CHAMPION_ALIAS])


def promote_day(tracking: MlflowTracking, day: date) -> Promotion:
    """Move the champion alias to the day's newest version if `champion_decision` allows it."""
    promotion = champion_decision(day_version(tracking, day), current_champion(tracking))
    if promotion.promoted:
        tracking.client().set_registered_model_alias(tracking.registered_model_name, CHAMPION_ALIAS, promotion.version)
    return promotion
