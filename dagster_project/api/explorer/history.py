"""What the explorer shows beside the served snapshot: the model dates before (and held after) the champion's.

Read in one short read-only session per snapshot (the snapshot itself holds only the champion's
day), so the warehouse is never kept open: persona and parent shares per model date, lineage,
the days whose drift check breached and the drift reviews; a person's earlier personas per lookup.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import polars as pl

from dagster_project.review.store import PENDING, Review, read_reviews
from dagster_project.tracking.registry import open_reviews_of_newest
from dagster_project.tracking.store import MlflowStore
from dagster_project.warehouse import read_frame, table_exists

# A month of model dates: enough to see a persona's trend, bounded so a long-lived home stays cheap to load.
HISTORY_DAYS = 30
PERSON = "persona"
PARENT = "parent"
SHARE_SCHEMA = {"event_date": pl.Date, "level": pl.String, "persona_id": pl.Int64, "label": pl.String,
                "share": pl.Float64}
LINEAGE_SCHEMA = {"event_date": pl.Date, "level": pl.String, "persona_id": pl.Int64, "event": pl.String,
                  "related_ids": pl.List(pl.Int64), "similarity": pl.Float64}
BREACH_SCHEMA = {"event_date": pl.Date, "metric": pl.String, "value": pl.Float64, "threshold": pl.Float64}
PERSON_PERSONAS_SCHEMA = {"event_date": pl.Date, "person_id": pl.String, "persona_id": pl.Int64,
                          "weight": pl.Float64}


@dataclass(frozen=True)
class History:
    as_of: date
    shares: pl.DataFrame  # SHARE_SCHEMA: every persona and parent per model date since `as_of - HISTORY_DAYS`
    parents: list[dict]  # the champion day's parents: persona_id, label, description, share, child_persona_ids
    lineage: pl.DataFrame  # LINEAGE_SCHEMA
    breaches: pl.DataFrame  # BREACH_SCHEMA: the breached drift metrics
    reviews: list[Review]  # every drift review, by day
    holding_reviews: list[Review]  # pending or rejected reviews of a day's newest version: they hold the champion

    @property
    def pending_reviews(self) -> list[Review]:
        return [review for review in self.holding_reviews if review.status == PENDING]

    @property
    def breach_days(self) -> list[date]:
        return sorted(set(self.breaches["event_date"].to_list()))

    def share_points(self, persona_id: int) -> list[tuple[date, float]]:
        """(model date, share) of a persona or parent id, oldest first."""
        rows = self.shares.filter(pl.col("persona_id") == persona_id).sort("event_date")
        return list(zip(rows["event_date"].to_list(), rows["share"].to_list(), strict=True))

    def last_seen(self, persona_id: int) -> dict | None:
        """The id's newest row of `shares` (model date, level, label, share), if any."""
        rows = self.shares.filter(pl.col("persona_id") == persona_id).sort("event_date")
        return rows.row(-1, named=True) if rows.height else None

    def lineage_of(self, persona_id: int) -> list[dict]:
        """The id's lineage events other than a plain continuation, oldest first, and those naming it."""
        named = pl.col("related_ids").list.contains(persona_id)
        rows = self.lineage.filter(
            ((pl.col("persona_id") == persona_id) & (pl.col("event") != "continued")) | named
        ).sort("event_date", "persona_id")
        return rows.to_dicts()

    def person_timeline(self, person_personas: pl.DataFrame) -> list[dict]:
        """Per model date up to the champion's, newest first: the person's personas (id, label, weight, whether
        new since the date before) and the persona ids they left. `person_personas`: `read_person_personas`."""
        labels = self.shares.filter(pl.col("level") == PERSON).select("event_date", "persona_id", "label")
        rows = (person_personas
                .join(labels, on=["event_date", "persona_id"], how="left")
                .sort(["event_date", "weight"], descending=[False, True]))
        timeline, before = [], None
        for (day,), group in rows.group_by("event_date", maintain_order=True):
            personas = group.select("persona_id", "label", "weight").to_dicts()
            ids = {persona["persona_id"] for persona in personas}
            for persona in personas:
                persona["new"] = before is not None and persona["persona_id"] not in before
            timeline.append({"event_date": day, "personas": personas, "left": sorted((before or set()) - ids)})
            before = ids
        return timeline[::-1]

def _frame(connection: duckdb.DuckDBPyConnection, table: str, sql: str, schema: dict, parameters: list
           ) -> pl.DataFrame:
    """The query's rows, or none while the table does not exist yet (a home older than the feature)."""
    if not table_exists(connection, table):
        return pl.DataFrame(schema=schema)
    return read_frame(connection, sql, parameters).cast(schema)


def read_history(connection: duckdb.DuckDBPyConnection, as_of: date) -> History:
    """Everything in one read-only session; the drift reviews are matched to the registry's newest versions."""
    since = as_of - timedelta(days=HISTORY_DAYS)
    shares = pl.concat([
        _frame(connection, "personas", f"select event_date, '{PERSON}' as level, persona_id, label, share "
               "from personas where event_date >= ?", SHARE_SCHEMA, [since]),
        _frame(connection, "persona_parents", f"select event_date, '{PARENT}' as level, persona_id, label, share "
               "from persona_parents where event_date >= ?", SHARE_SCHEMA, [since]),
    ])
    parents = _frame(
        connection, "persona_parents",
        "select persona_id, label, description, share, child_persona_ids from persona_parents where event_date = ? "
        "order by share desc",
        {"persona_id": pl.Int64, "label": pl.String, "description": pl.String, "share": pl.Float64,
         "child_persona_ids": pl.List(pl.Int64)}, [as_of],
    )
    reviews = read_reviews(connection)
    return History(
        as_of=as_of,
        shares=shares,
        parents=parents.to_dicts(),
        lineage=_frame(connection, "persona_lineage", "select event_date, level, persona_id, event, related_ids, "
                       "similarity from persona_lineage where event_date >= ?", LINEAGE_SCHEMA, [since]),
        breaches=_frame(connection, "persona_drift", "select event_date, metric, value, threshold from persona_drift "
                        "where breached and event_date >= ? order by event_date, metric", BREACH_SCHEMA, [since]),
        reviews=list(reviews.values()),
        holding_reviews=open_reviews_of_newest(MlflowStore(), reviews),
    )


def read_person_personas(connection: duckdb.DuckDBPyConnection, person_id: str, as_of: date) -> pl.DataFrame:
    """One person's personas per model date of the history window (read per lookup: all people's would not fit)."""
    return _frame(connection, "user_personas", "select event_date, person_id, persona_id, weight from user_personas "
                  "where person_id = ? and event_date between ? and ?", PERSON_PERSONAS_SCHEMA,
                  [person_id, as_of - timedelta(days=HISTORY_DAYS), as_of])
