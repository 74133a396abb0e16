"""Parent personas: agglomerated centroids, and their agreement with a planted nesting."""

import numpy as np
import polars as pl
import pytest

from dagster_project.science.hierarchy import nesting_recovery, parent_groups


def unit(rows):
    rows = np.asarray(rows, dtype=float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_close_personas_share_a_parent_and_lone_ones_have_none():
    # Tennis, running and football share a sports direction; cooking, books and pets stand apart.
    centroids = unit([
        [0, 0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
    ])
    assert parent_groups(centroids, distance_ratio=0.9).tolist() == [-1, 0, 0, -1, 0, -1]
    assert parent_groups(centroids[:2], distance_ratio=0.9).tolist() == [-1, -1]  # too few to nest


def test_nesting_recovery_scores_planted_pairs_and_sibling_kinship():
    planted = pl.DataFrame({"planted_persona_id": ["tennis", "runner", "sports", "cook", "books"],
                            "parent": ["sports", "sports", None, None, None]})
    to_planted = pl.DataFrame({"persona_id": [1, 2, 3, 4, 5],
                               "planted_persona_id": ["tennis", "runner", "sports", "cook", "books"]})
    # Parent 10 holds the sports family, parent 11 pairs cooking with books (not planted kin).
    parent_of = pl.DataFrame({"persona_id": [1, 2, 3, 4, 5], "parent_persona_id": [10, 10, 10, 11, 11]})
    scores = nesting_recovery(parent_of, to_planted, planted)
    assert scores["hierarchy_nesting_recall"] == 1.0
    assert scores["hierarchy_sibling_precision"] == pytest.approx(3 / 4)
    assert scores["hierarchy_parents"] == 2
    runner_apart = parent_of.with_columns(parent_persona_id=pl.when(pl.col("persona_id") == 2).then(None)
                                          .otherwise(pl.col("parent_persona_id")))
    assert nesting_recovery(runner_apart, to_planted, planted)["hierarchy_nesting_recall"] == 0.5
