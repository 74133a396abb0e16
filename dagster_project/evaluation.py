"""Scores against the generator's planted truth (sample data only)."""

import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from dagster_project.resources.duckdb import scalar
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
