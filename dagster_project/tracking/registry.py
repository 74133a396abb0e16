"""Registered model `persona-model`: one version per fitted day, and the `champion` alias.

Each version carries its partition date and the fit's own sanity as tags. The alias
moves only through `promote_days` and `release_held`, in date order and never back to an
older day. A version whose drift breached its thresholds has a review (`review.store`),
also tagged `review=pending|approved|rejected` on the version: it and every later day
wait until the review is approved. A rejected version is never served and the days after
it keep waiting until its day is refit (a new version, with a new drift verdict).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from mlflow.entities.model_registry import ModelVersion
from mlflow.models.model import ModelInfo

from dagster_project.review.store import APPROVED, PENDING, Review
from dagster_project.tracking.store import MlflowStore

PARTITION_DATE_TAG = "partition_date"
SANITY_TAG = "fit_sanity_passed"
REVIEW_TAG = "review"
DECISION_TAG = "champion_decision"  # promoted | held | refused, set by whoever judged the version
CHAMPION_ALIAS = "champion"


def ensure_registered_model(tracking: MlflowStore, description: str) -> None:
    """Create the registered model with `description` on first use; give an existing one without a description it."""
    client = tracking.client()
    name = tracking.registered_model_name
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name, description=description)
    elif not client.get_registered_model(name).description:
        client.update_registered_model(name, description=description)


def register_day_model(
    tracking: MlflowStore, model: ModelInfo, day: date, sanity_passed: bool, description: str
) -> ModelVersion:
    """A new version of the registered model (`ensure_registered_model`) for a logged model, described and
    tagged with its partition date and sanity in the one write that creates it."""
    return tracking.client().create_model_version(
        tracking.registered_model_name,
        model.model_uri,
        tags={PARTITION_DATE_TAG: day.isoformat(), SANITY_TAG: str(sanity_passed).lower()},
        description=description,
        model_id=model.model_id,
    )


def champion_uri(tracking: MlflowStore) -> str:
    """What `mlflow.pyfunc.load_model` takes once `tracking.activate()` has pointed MLflow at the home."""
    return f"models:/{tracking.registered_model_name}@{CHAMPION_ALIAS}"


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    version: str | None
    reason: str
    held: bool = False  # trusted but for a drift review: promoted once the review is approved

    @property
    def decision(self) -> str:
        return "promoted" if self.promoted else "held" if self.held else "refused"


def version_day(version: ModelVersion) -> str:
    return version.tags[PARTITION_DATE_TAG]


def version_id(version: ModelVersion) -> str:
    """The version number as text, as reviews store it (the SQL store hands out ints)."""
    return str(version.version)


def champion_decision(
    candidate: ModelVersion | None,
    champion: ModelVersion | None,
    review: Review | None = None,
    waiting_on: Review | None = None,
) -> Promotion:
    """Whether the day's newest version should become the champion, and why (not).

    review: the drift review of the candidate, if its drift breached; waiting_on: the earliest
    undecided or rejected review of a day between the champion's and the candidate's.
    """
    if candidate is None:
        return Promotion(False, None, "no model version was registered for this day")
    if candidate.tags.get(SANITY_TAG) != "true":
        return Promotion(False, candidate.version, "the fit's sanity failed (see fit_sanity.txt in its run)")
    if champion is not None and version_day(champion) > version_day(candidate):
        return Promotion(
            False, candidate.version,
            f"champion version {champion.version} is of a later day ({version_day(champion)})",
        )
    if waiting_on is not None:
        return Promotion(
            False, candidate.version,
            f"held: the drift review of {waiting_on.day} (version {waiting_on.version}) is {waiting_on.status}, "
            "and a change measured against an unapproved one is not approved either",
            held=True,
        )
    if review is not None and review.status != APPROVED:
        return Promotion(False, candidate.version, f"drift review {review.status}: {review.reason}",
                         held=review.status == PENDING)
    approved = f"; drift review approved by {review.decided_by}" if review is not None else ""
    return Promotion(True, candidate.version, f"fit sanity and upstream checks passed{approved}")


def newest_versions(tracking: MlflowStore) -> dict[date, ModelVersion]:
    """Each day's newest version: a rerun of a day registers another one."""
    newest: dict[date, ModelVersion] = {}
    for version in tracking.client().search_model_versions(f"name = '{tracking.registered_model_name}'"):
        day = date.fromisoformat(version_day(version))
        if day not in newest or int(version.version) > int(newest[day].version):
            newest[day] = version
    return newest


def day_version(tracking: MlflowStore, day: date) -> ModelVersion | None:
    """The newest version of the day."""
    versions = tracking.client().search_model_versions(
        f"name = '{tracking.registered_model_name}' and tags.{PARTITION_DATE_TAG} = '{day.isoformat()}'"
    )
    return max(versions, key=lambda version: int(version.version), default=None)


def current_champion(tracking: MlflowStore) -> ModelVersion | None:
    """The version the alias points at; None before the model or the alias exists."""
    client = tracking.client()
    if not client.search_registered_models(f"name = '{tracking.registered_model_name}'"):
        return None
    aliases = client.get_registered_model(tracking.registered_model_name).aliases
    if CHAMPION_ALIAS not in aliases:
        return None
    return client.get_model_version(tracking.registered_model_name, aliases[CHAMPION_ALIAS])


def tag_version(tracking: MlflowStore, version: str, key: str, value: str) -> None:
    tracking.client().set_model_version_tag(tracking.registered_model_name, version, key, value)


def open_reviews(reviews: dict[tuple[date, str], Review], newest: dict[date, ModelVersion]) -> list[Review]:
    """Reviews not approved of each day's newest version (one of a version since refit no longer counts), by day."""
    return sorted(
        (review for (day, version), review in reviews.items()
         if day in newest and version_id(newest[day]) == version and review.status != APPROVED),
        key=lambda review: review.day,
    )


def open_reviews_of_newest(tracking: MlflowStore, reviews: dict[tuple[date, str], Review]) -> list[Review]:
    """The pending or rejected reviews that hold the champion (and the days after them), by day."""
    return open_reviews(reviews, newest_versions(tracking))


def _waiting_on(
    reviews: dict[tuple[date, str], Review], newest: dict[date, ModelVersion], after: date, before: date
) -> Review | None:
    """The earliest open review of a day in (after, before)."""
    return next((review for review in open_reviews(reviews, newest) if after < review.day < before), None)


def promote_days(
    tracking: MlflowStore,
    days: Iterable[date],
    reviews: dict[tuple[date, str], Review],
) -> dict[date, Promotion]:
    """Judge each day's newest version in date order, move the alias to those `champion_decision` allows,
    and tag every judged version with the decision."""
    newest = newest_versions(tracking)
    client = tracking.client()
    champion = current_champion(tracking)  # looked up once, then followed as the alias moves
    promotions: dict[date, Promotion] = {}
    for day in sorted(days):
        candidate = newest.get(day)
        champion_day = date.fromisoformat(version_day(champion)) if champion else date.min
        review = reviews.get((day, version_id(candidate))) if candidate else None
        promotion = champion_decision(candidate, champion, review, _waiting_on(reviews, newest, champion_day, day))
        if promotion.promoted:
            client.set_registered_model_alias(tracking.registered_model_name, CHAMPION_ALIAS, promotion.version)
            champion = candidate
        if candidate is not None:
            tag_version(tracking, candidate.version, DECISION_TAG, promotion.decision)
        promotions[day] = promotion
    return promotions


def release_held(
    tracking: MlflowStore, reviews: dict[tuple[date, str], Review], after: date
) -> dict[date, Promotion]:
    """Promote, in date order, the versions of days after `after` that were held only for a review
    now approved: after `personas review approve`, or a rerun that cleared the review's day."""
    held = [day for day, version in newest_versions(tracking).items()
            if day > after and version.tags.get(DECISION_TAG) == "held"]
    return promote_days(tracking, held, reviews)
