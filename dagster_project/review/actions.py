"""What `personas label …`, `personas review …` and the API's label route do to a home.

Both write the warehouse (DuckDB: one writing process at a time) and the MLflow registry;
a run holding the warehouse for longer than the wait is reported, never waited out forever.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from dagster_project.paths import warehouse_path
from dagster_project.review.store import (
    APPROVED,
    PENDING,
    Review,
    ReviewError,
    decide_review,
    label_override_history,
    read_reviews,
    set_label_override,
)
from dagster_project.tracking.registry import (
    DECISION_TAG,
    PARTITION_DATE_TAG,
    REVIEW_TAG,
    Promotion,
    current_champion,
    day_version,
    newest_versions,
    open_reviews,
    open_reviews_of_newest,
    release_held,
    tag_version,
    version_id,
)
from dagster_project.tracking.store import MlflowStore
from dagster_project.warehouse import connect_waiting_for_lock, transaction

LOCK_WAIT_SECONDS = 10.0


class WarehouseBusy(RuntimeError):
    """A pipeline run (or another writer) held the warehouse for the whole wait."""


def utc_now() -> datetime:
    """Naive UTC, as every timestamp of the warehouse."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def warehouse(home: Path, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS
              ) -> Iterator[duckdb.DuckDBPyConnection]:
    path = warehouse_path(home)
    if not path.exists():
        raise ReviewError(f"no warehouse at {path}: run the pipeline first (`personas run --start D`)")
    try:
        connection = connect_waiting_for_lock(str(path), read_only, wait_seconds)
    except duckdb.IOException as error:
        raise WarehouseBusy(f"{path} stayed locked for {wait_seconds:.0f}s (a run is writing it?): "
                            f"try again when it ends ({error})") from error
    try:
        yield connection
    finally:
        connection.close()


def set_label(home: Path, persona_id: int, label: str | None, by: str,
              wait_seconds: float = LOCK_WAIT_SECONDS) -> int:
    """Set (or with None clear) the human label of a persona id; the number of persona rows relabelled."""
    with warehouse(home, wait_seconds=wait_seconds) as connection:
        return set_label_override(connection, persona_id, label, by, utc_now())


def label_history(home: Path) -> pl.DataFrame:
    with warehouse(home, read_only=True) as connection:
        return label_override_history(connection)


@dataclass(frozen=True)
class Decision:
    review: Review
    promotions: dict[date, Promotion]
    champion: str  # "version N (day)" after the decision


def _version_text(version: str, day: str | date) -> str:
    return f"version {version} ({day})"


def _champion_text(tracking: MlflowStore) -> str:
    champion = current_champion(tracking)
    return _version_text(champion.version, champion.tags[PARTITION_DATE_TAG]) if champion else "none"


def decide_day(home: Path, day: date, status: str, by: str) -> Decision:
    """Approve or reject the drift review of the day's newest version.

    Approval promotes the day and then the later days held behind it, in date order, up to the
    next open review; never back past a newer champion. Rejection leaves the alias where it is.
    """
    tracking = MlflowStore()
    tracking.activate()
    version = day_version(tracking, day)
    if version is None:
        raise ReviewError(f"no model version of {day} in {tracking.display_uri}")
    with warehouse(home) as connection:
        review = decide_review(connection, day, version_id(version), status, by, utc_now())
        reviews = read_reviews(connection)
    tag_version(tracking, version.version, REVIEW_TAG, status)
    promotions = release_held(tracking, reviews, after=day - timedelta(days=1)) if status == APPROVED else {}
    return Decision(review, promotions, _champion_text(tracking))


def decide_days(home: Path, first: date, last: date, status: str, by: str) -> list[Decision]:
    """Every pending review of [first, last] decided in one command and one transaction, each recorded with who
    and when as if decided one by one; then the held days are judged once, in date order, as `decide_day`
    would have left them (judging them again after every approval re-tagged each later held day once per
    approval). Each judged day goes with the latest review of the range on or before it."""
    tracking = MlflowStore()
    tracking.activate()
    newest = newest_versions(tracking)
    champion = _champion_text(tracking)
    with warehouse(home) as connection:
        with transaction(connection):
            days = [review.day for review in open_reviews(read_reviews(connection), newest)
                    if review.status == PENDING and first <= review.day <= last]
            if not days:
                raise ReviewError(f"no pending drift review from {first} through {last}")
            decided = [decide_review(connection, day, version_id(newest[day]), status, by, utc_now()) for day in days]
        reviews = read_reviews(connection)
    for day in days:
        tag_version(tracking, newest[day].version, REVIEW_TAG, status)
    promotions = release_held(tracking, reviews, after=days[0] - timedelta(days=1)) if status == APPROVED else {}
    decisions = []
    for review, until in zip(decided, [*days[1:], date.max], strict=True):
        own = {day: promotion for day, promotion in promotions.items() if review.day <= day < until}
        # The alias after this decision: the last day it promoted, else where the decision before left it.
        for day, promotion in own.items():
            if promotion.promoted:
                champion = _version_text(promotion.version, day)
        decisions.append(Decision(review, own, champion))
    return decisions


def review_lines(home: Path) -> list[str]:
    """The champion, then every review (newest version of its day or not) and the days held behind open ones."""
    tracking = MlflowStore()
    tracking.activate()
    with warehouse(home, read_only=True) as connection:
        reviews = read_reviews(connection)
    newest = newest_versions(tracking)
    lines = [f"Champion: {_champion_text(tracking)}"]
    if not reviews:
        return [*lines, "No drift review: no fitted day breached the drift thresholds."]
    for (day, version), review in reviews.items():
        superseded = "" if day in newest and version_id(newest[day]) == version else " (superseded by a refit)"
        decided = f" by {review.decided_by} at {review.decided_at:%Y-%m-%d %H:%M:%S} UTC" if review.decided_by else ""
        lines.append(f"  {day}  v{version}  {review.status}{decided}{superseded}: {review.reason}")
    held = sorted(day for day, version in newest.items() if version.tags.get(DECISION_TAG) == "held")
    if held:
        lines.append(f"Held for review: {', '.join(map(str, held))}")
    return lines


def champion_status(home: Path) -> str:
    """One line for the run summary: the served champion and, if any, the review that holds it back."""
    tracking = MlflowStore()
    tracking.activate()
    with warehouse(home, read_only=True) as connection:
        reviews = read_reviews(connection)
    champion = f"Champion model: {_champion_text(tracking)}"
    blocking = open_reviews_of_newest(tracking, reviews)
    if not blocking:
        return f"{champion}; no drift review open."
    first = blocking[0]
    held = sum(1 for day, version in newest_versions(tracking).items()
               if day > first.day and version.tags.get(DECISION_TAG) == "held")
    what = "awaits review" if first.status == PENDING else "was rejected"
    pending = [review for review in blocking if review.status == PENDING]
    through = (f" {len(pending)} reviews are pending through {pending[-1].day}: `personas review list` shows them, "
               f"`personas review approve {first.day} --through {pending[-1].day}` approves them all."
               if first.status == PENDING and len(pending) > 1 else "")
    return (f"{champion}, held: the drift of {first.day} (v{first.version}: {first.reason}) {what}"
            f"{f', and {held} later day(s) wait behind it' if held else ''}. "
            + (f"Approve with `personas review approve {first.day}` or reject with "
               f"`personas review reject {first.day}`." if first.status == PENDING
               else f"Rerun {first.day} to fit a new version for review.") + through)
