"""Scores against the generator's planted truth (sample data only)."""

import os
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from dagster_project.resources.duckdb import scalar
from dagster_project.science.metrics import (
    clustering_agreement,
    label_term_precision,
    map_personas_to_planted,
    persona_f1,
)
from dagster_project.paths import DEFAULT_PII_SALT, truth_dir, warehouse_path


def pairwise_precision_recall(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pair-counting precision and recall of a clustering: of the item pairs put together,
    the share truly together, and of the pairs truly together, the share put together."""

    def together_pairs(*labels: np.ndarray) -> float:
        codes = [np.unique(label, return_inverse=True)[1] for label in labels]
        _, counts = np.unique(np.stack(codes, axis=1), axis=0, return_counts=True)
        return float((counts * (counts - 1) / 2).sum())

    both = together_pairs(predicted, truth)
    predicted_pairs, true_pairs = together_pairs(predicted), together_pairs(truth)
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return precision, recall


def identity_scores(home: Path) -> dict[str, float] | None:
    """Pairwise precision/recall of stitched persons against the planted persons, over every
    identifier the warehouse has seen. None without a truth folder or warehouse."""
    truth_file = truth_dir(home) / "identifiers.parquet"
    if not truth_file.exists() or not warehouse_path(home).exists():
        return None
    truth = pl.read_parquet(truth_file)
    salt = os.environ.get("PERSONAS_PII_SALT") or DEFAULT_PII_SALT
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        connection.register("truth", truth.to_arrow())
        # Handles are stored as the same salted hash staging computes.
        joined = connection.sql(
            """
            with truth_identifiers as (
                select id_type, person_key,
                       case when id_type = 'handle' then sha256(? || lower(trim(ltrim(id_value, '@'))))
                            else id_value end as identifier_value
                from truth
            )
            select stitched.person_id, truth_identifiers.person_key
            from dim_person_identifiers as stitched
            join truth_identifiers
              on truth_identifiers.id_type = stitched.identifier_type
             and truth_identifiers.identifier_value = stitched.identifier_value
            """,
            params=[salt],
        ).pl()
        n_stitched = scalar(connection, "select count(*) from dim_person_identifiers")
    precision, recall = pairwise_precision_recall(joined["person_id"].to_numpy(), joined["person_key"].to_numpy())
    return {
        "identity_precision": precision,
        "identity_recall": recall,
        "identifiers_scored": joined.height,
        "identifiers_unmatched": n_stitched - joined.height,
    }


def _latest_model_date(connection: duckdb.DuckDBPyConnection, end: date | None) -> date | None:
    if end is not None:
        return scalar(connection, "select max(event_date) from personas where event_date <= ?", [end])
    return scalar(connection, "select max(event_date) from personas")


def persona_truth_scores(home: Path, connection: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, float | None]:
    """ARI/NMI of memory -> persona, per-person persona F1 and label-term precision as of `as_of`."""
    truth = truth_dir(home)
    records = pl.read_parquet(truth / "records.parquet", columns=["record_id", "person_key", "persona"]).drop_nulls()
    memory_events = connection.sql(
        """select assignments.memory_id, assignments.persona_id, unnest(memories.event_ids) as record_id
           from memory_assignments as assignments join intent_memories as memories using (memory_id)
           where assignments.event_date = ?""",
        params=[as_of],
    ).pl()
    planted_by_memory = (
        memory_events.join(records, on="record_id")
        .group_by("memory_id", "persona_id", "persona").len()
        .sort("memory_id", "len", "persona", descending=[False, True, False])
        .group_by("memory_id", maintain_order=True).first()
        .rename({"persona": "planted_persona_id"})
    )
    agreement = clustering_agreement(planted_by_memory["persona_id"].to_list(),
                                     planted_by_memory["planted_persona_id"].to_list())
    persona_to_planted = map_personas_to_planted(planted_by_memory.select("persona_id", "planted_persona_id"))
    # Planted people become stitched persons through the events they produced.
    person_of_key = (
        connection.sql("select event_id as record_id, person_id from fct_events").pl()
        .join(records, on="record_id")
        .group_by("person_key", "person_id").len()
        .sort("person_key", "len", descending=[False, True])
        .group_by("person_key", maintain_order=True).first()
    )
    planted_weights = (
        pl.read_parquet(truth / "persona_weights.parquet")
        .filter((pl.col("valid_from") <= as_of) & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= as_of)))
        .join(person_of_key, on="person_key")
        .select("person_id", planted_persona_id="persona", weight="weight")
    )
    predicted = connection.sql(
        "select person_id, persona_id, weight from user_personas where event_date = ?", params=[as_of]
    ).pl()
    # Only people the model saw in its window can be scored.
    f1 = persona_f1(predicted, planted_weights.join(predicted.select("person_id").unique(), on="person_id"),
                    persona_to_planted)
    label_terms = connection.sql(
        "select persona_id, label_terms from personas where event_date = ?", params=[as_of]
    ).pl()
    planted_terms = pl.read_parquet(truth / "personas.parquet").select(planted_persona_id="persona", terms="terms")
    return {
        **agreement,
        "persona_f1": f1["f1"],
        "persona_f1_users": f1["n_users"],
        "label_term_precision": label_term_precision(label_terms, persona_to_planted, planted_terms),
    }


def utility_summary(connection: duckdb.DuckDBPyConnection, start: date | None, end: date | None) -> dict:
    """Mean next-day utility per method over the days of [start, end] that have it."""
    rows = connection.execute(
        """select method, k, avg(hit_rate), avg(recall), sum(n_users)
           from persona_utility
           where event_date between coalesce(?, date '1970-01-01') and coalesce(?, date '9999-12-31')
           group by all order by all""",
        [start, end],
    ).fetchall()
    summary: dict[str, dict] = {}
    for method, k, hit_rate, recall, n_users in rows:
        entry = summary.setdefault(method, {"hit_at_10": None, "recall_at_10": None, "hit_at_50": None, "n": None})
        if k == 10:
            entry.update(hit_at_10=hit_rate, recall_at_10=recall, n=int(n_users))
        elif k == 50:
            entry["hit_at_50"] = hit_rate
    return summary


def evaluate(home: Path, start: date | None = None, end: date | None = None) -> dict:
    """What `personas evaluate` reports; keys that do not apply are None."""
    report: dict = {key: None for key in ("as_of", "ari", "nmi", "persona_f1", "label_term_precision",
                                          "truthfulness", "quality", "n_personas")}
    report["utility"] = {}
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        as_of = _latest_model_date(connection, end)
        if as_of is None:
            return report
        report["as_of"] = as_of.isoformat()
        truthfulness, mean_quality, n_personas = connection.execute(
            "select avg(truthfulness), avg(quality), count(*) from personas where event_date = ?", [as_of]
        ).fetchall()[0]
        report.update(truthfulness=truthfulness, quality=mean_quality, n_personas=n_personas)
        if (truth_dir(home) / "records.parquet").exists():
            report.update(persona_truth_scores(home, connection, as_of))
        report["utility"] = utility_summary(connection, start, end)
    if (identity := identity_scores(home)) is not None:
        report.update(identity)
    return report
