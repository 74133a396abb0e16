"""The review tables of the warehouse, written by the CLI, the API and the monitoring assets.

`persona_label_overrides`: every human label set or cleared (label NULL), with who and when;
the newest row per persona id is in force. `persona_reviews`: one row per model version
whose drift breached its thresholds: pending until someone approves or rejects it.
"""

import json
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from dagster_project.review.overrides import COMPUTED, HUMAN, OVERRIDE_SCHEMA
from dagster_project.warehouse import read_frame, scalar, table_exists, transaction

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
MAX_LABEL_CHARS = 200
OVERRIDES_DDL = """create table if not exists persona_label_overrides (
    persona_id bigint not null, label varchar, set_by varchar not null, set_at timestamp not null)"""
REVIEWS_DDL = """create table if not exists persona_reviews (
    day date not null, version varchar not null, status varchar not null, reason varchar not null,
    opened_at timestamp not null, decided_by varchar, decided_at timestamp, primary key (day, version))"""
# The `personas` gate refuses a label matching these (email, IP, phone): a human label must pass it too.
PERSONAS_SUITE = Path(__file__).resolve().parents[2] / "expectations" / "personas.json"
LABEL_COLUMNS = {"computed_label": "varchar", "label_source": "varchar", "label_set_by": "varchar",
                 "label_set_at": "timestamp"}


class ReviewError(ValueError):
    """A review command that cannot be carried out; the message says why and what would work."""


class UnknownPersona(ReviewError):
    """No model date has the persona id."""


@dataclass(frozen=True)
class Review:
    """The drift review of one model version: `reason` names each breached metric, its value and threshold."""

    day: date
    version: str
    status: str
    reason: str
    decided_by: str | None = None
    decided_at: datetime | None = None


def label_pii_patterns() -> list[str]:
    return [expectation["kwargs"]["regex"] for expectation in json.loads(PERSONAS_SUITE.read_text())["expectations"]
            if expectation["type"] == "expect_column_values_to_not_match_regex"
            and expectation["kwargs"]["column"] == "label"]


def active_label_overrides(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The label in force per persona id (a cleared override is none)."""
    if not table_exists(connection, "persona_label_overrides"):
        return pl.DataFrame(schema=OVERRIDE_SCHEMA)
    return read_frame(connection, """
        select persona_id, label, set_by, set_at from (
            select *, row_number() over (partition by persona_id order by set_at desc) as newest
            from persona_label_overrides)
        where newest = 1 and label is not null order by persona_id""").cast(OVERRIDE_SCHEMA)


def set_label_override(
    connection: duckdb.DuckDBPyConnection, persona_id: int, label: str | None, by: str, at: datetime
) -> int:
    """Record a human label (None clears it) and show it on every model date that has the id; rows relabelled.

    Past days change too: the label names the persona id, and `computed_label` keeps each day's own.
    """
    if label is not None:
        label = " ".join(label.split())
        if not label or len(label) > MAX_LABEL_CHARS:
            raise ReviewError(f"a label needs 1 to {MAX_LABEL_CHARS} characters, got {len(label)}")
        if any(re.search(pattern, label) for pattern in label_pii_patterns()):
            raise ReviewError(f"the label {label!r} looks like it holds an email, IP or phone number, "
                              f"which the `personas` gate refuses ({PERSONAS_SUITE.name})")
    if not table_exists(connection, "personas") or not scalar(
            connection, "select count(*) from personas where persona_id = ?", [persona_id]):
        raise UnknownPersona(f"unknown persona id {persona_id}: no model date in `personas` has it")
    connection.execute(OVERRIDES_DDL)
    for column, column_type in LABEL_COLUMNS.items():
        connection.execute(f"alter table personas add column if not exists {column} {column_type}")
    with transaction(connection):
        # Rows written before overrides existed carry their computed label only in `label`.
        connection.execute(f"update personas set computed_label = label, label_source = '{COMPUTED}' "
                           "where computed_label is null")
        connection.execute("insert into persona_label_overrides values (?, ?, ?, ?)", [persona_id, label, by, at])
        relabelled = connection.execute(
            "update personas set label = coalesce(?, computed_label), label_source = ?, label_set_by = ?, "
            "label_set_at = ? where persona_id = ?",
            [label, HUMAN if label else COMPUTED, by if label else None, at if label else None, persona_id],
        ).fetchall()[0][0]
    return relabelled


def label_override_history(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every override ever set or cleared, newest first."""
    if not table_exists(connection, "persona_label_overrides"):
        return pl.DataFrame(schema=OVERRIDE_SCHEMA)
    return read_frame(connection, "select * from persona_label_overrides order by set_at desc")


def read_reviews(connection: duckdb.DuckDBPyConnection) -> dict[tuple[date, str], Review]:
    """Every review, keyed by (day, version)."""
    if not table_exists(connection, "persona_reviews"):
        return {}
    rows = read_frame(connection, "select day, version, status, reason, decided_by, decided_at from persona_reviews "
                                  "order by day, version::int")
    return {(row["day"], row["version"]): Review(**row) for row in rows.iter_rows(named=True)}


def open_reviews(connection: duckdb.DuckDBPyConnection, breaches: dict[date, tuple[str, str]], at: datetime) -> None:
    """A pending review for each breached day's (version, reason) not reviewed yet; a decided one stays decided."""
    connection.execute(REVIEWS_DDL)
    for day, (version, reason) in breaches.items():
        connection.execute("insert into persona_reviews (day, version, status, reason, opened_at) "
                           "values (?, ?, ?, ?, ?) on conflict do nothing", [day, version, PENDING, reason, at])


def decide_review(
    connection: duckdb.DuckDBPyConnection, day: date, version: str, status: str, by: str, at: datetime
) -> Review:
    """Approve or reject the pending review of the day's newest version; a decision is final for that version."""
    reviews = read_reviews(connection)
    review = reviews.get((day, version))
    if review is None:
        known = ", ".join(f"{d} v{v} ({r.status})" for (d, v), r in reviews.items() if d == day)
        raise ReviewError(
            f"no drift review of {day} version {version} (its newest): "
            + (f"the day's reviews are of earlier versions: {known}" if known else
               "its drift stayed within the thresholds, or was not measured")
        )
    if review.status != PENDING:
        raise ReviewError(
            f"the review of {day} version {version} was already {review.status} by {review.decided_by} at "
            f"{review.decided_at:%Y-%m-%d %H:%M:%S} UTC; a rerun of the day fits a new version to review"
        )
    connection.execute("update persona_reviews set status = ?, decided_by = ?, decided_at = ? "
                       "where day = ? and version = ?", [status, by, at, day, version])
    return replace(review, status=status, decided_by=by, decided_at=at)
