"""Parent personas over the day's personas ("Sports fan" over tennis spectator and runner).

Average-linkage agglomeration of the persona centroids on cosine distance (scipy), cut at a
share of the day's median distance between two personas: personas clearly closer to each
other than personas usually are share a parent; a persona with no such neighbour has none.
The cut is relative because absolute cosine distances depend on the vectoriser (on the
realistic sample world every pair of personas lies at 0.40-0.57, the sports personas at
0.42-0.45). Pure: arrays and frames in and out.

Parents live in their own table, `persona_parents` (labelled like personas, with
`child_persona_ids`), and each persona names its parent in `personas.parent_persona_id`.
Rows of `personas` would have broken every reader that takes a model date's personas as a
partition of its memories: shares summing to 1, user_personas weights, drift bins and PSI,
the API's nearest-centroid assignment, the evaluation's persona count and label precision,
the GX suite. Parent ids come from the personas' id sequence, so an id names one thing.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist


def parent_groups(centroids: np.ndarray, distance_ratio: float) -> np.ndarray:
    """Parent index (0..p-1) per persona centroid (L2-normalised rows), -1 for a persona without one.

    A parent groups at least two personas whose average pairwise cosine distance is at most
    `distance_ratio` x the median distance between two of the day's personas; parents are
    numbered in the order of their first child. Fewer than three personas have no parents.
    """
    parents = np.full(len(centroids), -1, dtype=np.int64)
    if len(centroids) < 3:
        return parents
    centroids = np.asarray(centroids, dtype=float)
    distances = pdist(centroids, metric="cosine")
    tree = linkage(distances, method="average")
    groups = fcluster(tree, t=distance_ratio * float(np.median(distances)), criterion="distance")
    _, first_rows, inverse, sizes = np.unique(groups, return_index=True, return_inverse=True, return_counts=True)
    shared = sizes[inverse] >= 2
    # Number the shared groups by their first child's row so the numbering follows the personas'.
    order = np.argsort(first_rows[sizes >= 2])
    rank = np.full(sizes.size, -1, dtype=np.int64)
    rank[np.flatnonzero(sizes >= 2)[order]] = np.arange(order.size)
    parents[shared] = rank[inverse[shared]]
    return parents


def nesting_recovery(
    parent_of: pl.DataFrame, persona_to_planted: pl.DataFrame, planted_parents: pl.DataFrame
) -> dict[str, float | int | None]:
    """How the hierarchy of one day matches the planted nesting.

    parent_of: persona_id, parent_persona_id (null: none); persona_to_planted: persona_id,
    planted_persona_id; planted_parents: planted_persona_id, parent (null at the top).
    recall: share of planted (child, parent) pairs whose personas sit under one parent
    persona; precision: share of sibling pairs under the parents that are planted kin (a
    child and its parent, two children of one parent, or two personas of one planted).
    """
    family = {child: parent for child, parent in planted_parents.drop_nulls("parent").iter_rows()}
    siblings = (
        parent_of.drop_nulls("parent_persona_id").join(persona_to_planted, on="persona_id")
        .select("parent_persona_id", "planted_persona_id")
    )
    pairs = siblings.join(siblings, on="parent_persona_id", suffix="_other").filter(
        pl.col("planted_persona_id") != pl.col("planted_persona_id_other")
    ).select("planted_persona_id", "planted_persona_id_other").unique()
    together = set(pairs.iter_rows())
    recovered = [(child, parent) in together for child, parent in family.items()]
    model_pairs = (
        parent_of.drop_nulls("parent_persona_id").join(persona_to_planted, on="persona_id")
        .join(parent_of.drop_nulls("parent_persona_id").join(persona_to_planted, on="persona_id"),
              on="parent_persona_id", suffix="_other")
        .filter(pl.col("persona_id") < pl.col("persona_id_other"))
    )

    def kin(first: str, second: str) -> bool:
        return first == second or family.get(first) == second or family.get(second) == first or (
            family.get(first) is not None and family.get(first) == family.get(second))

    kin_pairs = [kin(first, second) for first, second in
                 model_pairs.select("planted_persona_id", "planted_persona_id_other").iter_rows()]
    return {
        "hierarchy_nesting_recall": float(np.mean(recovered)) if recovered else None,
        "hierarchy_sibling_precision": float(np.mean(kin_pairs)) if kin_pairs else None,
        "hierarchy_parents": parent_of["parent_persona_id"].drop_nulls().n_unique(),
    }
