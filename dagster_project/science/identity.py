"""Persona identity over time: ids carried across days, and every change on record.

A k-means refit each day knows nothing of yesterday's numbering. Today's clusters are
matched (Hungarian, cosine distance of centroids) against every persona seen on the last
`memory_days` model dates, each re-expressed in today's vector space from the memories its
latest day shares with today's window, most recent first. So a persona that is missing for
a day, absorbed by a neighbour or lost by a k that flickered, comes back under its id. Before
that, `reconcile_with_previous` undoes the flicker itself where it can: a persona of the previous
model date that a k one lower folded into a neighbour keeps its cluster, and a catch-all between
personas that a k one higher added is let go.

The distance cut is learned: the typical distance between today's nearest distinct personas,
raised when the personas' own recorded day-to-day moves (the `continued` rows of the recent
lineage) are larger, as they are on thin, noisy days.

What matching does not explain, membership does: an unmatched cluster whose members mostly
(`split_share`) sat in one persona yesterday continues that persona if no cluster matched it
(it moved far: k shrank and merged its halves, or a thin day), is `split_from` it if another
cluster did, and is `born` otherwise or when most of its members are memories new since the previous
model date; a persona
of yesterday left unmatched whose members mostly moved to one cluster is `merged_into`
that cluster's persona, otherwise it is dormant (no row) until it comes back or drops out of
the memory unmerged (`retired`). Pure: arrays and frames in and out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from dagster_project.science.clustering import assign, refit_with, weighted_centroids

LINEAGE_SCHEMA = {
    "persona_id": pl.Int64, "event": pl.String, "related_ids": pl.List(pl.Int64), "similarity": pl.Float64,
}
# A robust spread (MAD x 1.4826 ~ one standard deviation) this many times above the median move.
MOVE_SPREADS = 6.0
# Fewer recorded moves than this: the cut rests on today's separation alone.
MIN_MOVES = 10
# A day of absence costs this much distance: of two equally close candidates, the most recent wins.
AGE_PENALTY = 1e-3
_UNREACHABLE = 1e6


@dataclass(frozen=True)
class Candidates:
    """Personas of the recent model dates, re-expressed in today's space (rows of `centroids`)."""

    centroids: np.ndarray
    ids: np.ndarray
    last_seen: np.ndarray  # model date each id was last fitted on (numpy datetime64[D])

    @classmethod
    def none(cls, dimensions: int) -> Candidates:
        return cls(np.zeros((0, dimensions)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype="datetime64[D]"))


def recent_candidates(X: sp.csr_matrix, window_memory_ids: pl.Series, history: pl.DataFrame | None) -> Candidates:
    """Each persona of `history` (event_date = model date, memory_id, persona_id) at its latest
    model date, as the mean of today's vectors (`X`, rows in `window_memory_ids` order) of the
    memories it then held that today's window still has."""
    if history is None or history.is_empty():
        return Candidates.none(X.shape[1])
    latest = history.filter(pl.col("event_date") == pl.col("event_date").max().over("persona_id"))
    shared = (
        pl.DataFrame({"memory_id": window_memory_ids}).with_row_index("row")
        .join(latest.select("memory_id", "persona_id", "event_date"), on="memory_id")
    )
    if shared.is_empty():
        return Candidates.none(X.shape[1])
    ids, labels = np.unique(shared["persona_id"].to_numpy(), return_inverse=True)
    rows = shared["row"].to_numpy()
    last_seen = shared.group_by("persona_id").agg(pl.col("event_date").max()).sort("persona_id")
    return Candidates(
        centroids=weighted_centroids(X[rows], labels, np.ones(rows.size), ids.size),
        ids=ids.astype(np.int64),
        last_seen=last_seen["event_date"].to_numpy().astype("datetime64[D]"),
    )


def learned_match_cut(recent_moves: np.ndarray, centroids: np.ndarray, ceiling: float) -> float:
    """Cosine distance within which a cluster is still a persona of the recent days.

    The median distance from today's centroids to their nearest distinct neighbour (matching
    is one-to-one, so a cluster only takes a candidate no other cluster is closer to; beyond
    the typical neighbour distance it would be another persona), raised to median + 6 robust
    spreads of the recorded day-to-day moves when personas move further (thin, noisy days),
    never beyond `ceiling`. On the realistic sample world neighbours lie 0.40-0.45 apart and
    recorded moves stay below 0.1. Half the neighbour distance was tried: on thinned, bursty
    days it issued more ids than yesterday-only matching with a fixed 0.5 (28 against 25).
    """
    separation = _nearest_neighbour_distance(centroids)
    cut = separation if np.isfinite(separation) else ceiling
    moves = np.asarray(recent_moves, dtype=float)
    if moves.size >= MIN_MOVES:
        median = float(np.median(moves))
        cut = max(cut, median + MOVE_SPREADS * 1.4826 * float(np.median(np.abs(moves - median))))
    return float(min(ceiling, cut))


def _nearest_neighbour_distance(centroids: np.ndarray) -> float:
    """Median over centroids of the cosine distance to the nearest other one (inf below two)."""
    if len(centroids) < 2:
        return float("inf")
    distance = 1.0 - centroids @ centroids.T
    np.fill_diagonal(distance, np.inf)
    return float(np.median(distance.min(axis=1)))


def reconcile_with_previous(
    X: sp.csr_matrix,
    weights: np.ndarray,
    centroids: np.ndarray,
    candidates: Candidates,
    match_cut: float,
    person_codes: np.ndarray,
    min_people: int,
) -> np.ndarray:
    """`centroids` with a flicker of the day's k undone against the personas of the latest model date in
    `candidates`; the yardstick is the day's centroids that continue one of them (matched one-to-one
    within `match_cut`).

    k is chosen afresh every day. A k one lower folds a persona into a neighbour for a day, and it comes
    back the next day under its id: two id changes for its people where nothing happened. Each lost
    persona is seeded back from its centroid in today's space and keeps its cluster when the refit keeps
    it, still within `match_cut` of that persona, with members from at least `min_people` people, and at
    least as far from every other centroid as the two closest continuing personas are. A k one higher can
    add a catch-all between personas, born one day and retired a week later: a new centroid nearer its
    neighbour than those two, and nearer the others on average than any continuing persona, is let go
    (a persona found late or split off another lies about as far from the rest as they do).
    """
    if len(centroids) < 2 or not len(candidates.ids):
        return centroids
    previous = candidates.centroids[candidates.last_seen == candidates.last_seen.max()]
    distance = 1.0 - centroids @ previous.T
    rows, columns = linear_sum_assignment(np.where(distance <= match_cut, distance, _UNREACHABLE))
    matched = distance[rows, columns] <= match_cut
    if matched.sum() < 2:
        return centroids
    apart = 1.0 - centroids @ centroids.T
    np.fill_diagonal(apart, np.nan)
    nearest, mean = np.nanmin(apart, axis=1), np.nanmean(apart, axis=1)
    continuing = rows[matched]
    closest_pair = np.nanmin(apart[np.ix_(continuing, continuing)])
    new = np.setdiff1d(np.arange(len(centroids)), continuing)
    centroids = np.delete(centroids, new[(nearest[new] < closest_pair) & (mean[new] < mean[continuing].min())], axis=0)
    for persona in previous[np.setdiff1d(np.arange(len(previous)), columns[matched])]:
        refitted = refit_with(X, weights, centroids, persona[None, :])
        if len(refitted) != len(centroids) + 1 or 1.0 - refitted[-1] @ persona > match_cut:
            continue
        members = assign(X, refitted)[0] == len(centroids)
        if (1.0 - (refitted[:-1] @ refitted[-1]).max() >= closest_pair
                and np.unique(person_codes[members]).size >= min_people):
            centroids = refitted
    return centroids


@dataclass(frozen=True)
class Identity:
    """Ids of today's clusters (rows of the centroids) and the lineage rows of the day."""

    persona_ids: np.ndarray
    next_persona_id: int
    lineage: pl.DataFrame  # LINEAGE_SCHEMA
    match_cut: float


def carry_identity(
    centroids: np.ndarray,
    candidates: Candidates,
    memberships: pl.DataFrame,
    as_of: dt.date,
    next_persona_id: int,
    match_cut: float,
    memory_days: int = 7,
    closed_ids: frozenset[int] = frozenset(),
    split_share: float = 0.5,
    return_clusters: dict[int, frozenset[int]] | None = None,
) -> Identity:
    """Ids for today's `centroids` and what happened to every persona of the recent days.

    memberships: one row per memory of today's window: `cluster` (today's row of centroids)
    and `previous_persona_id` (its persona on the previous model date, null if it had none).
    closed_ids: personas already merged into another (they retire without a second row).
    return_clusters: per recent persona, today's clusters that hold at least an even share (1/k) of the
    memories of its latest day. A persona missing on the previous model date comes back only in one of
    them: a centroid near a dormant persona that took (almost) none of its memories is another persona
    (a new one near an old catch-all). A persona not listed is not constrained.
    """
    persona_ids = np.full(len(centroids), -1, dtype=np.int64)
    similarity = np.full(len(centroids), np.nan)
    if len(candidates.ids) and len(centroids):
        distance = 1.0 - np.asarray(centroids) @ candidates.centroids.T
        age_days = (np.datetime64(as_of, "D") - candidates.last_seen).astype(int)
        cost = np.where(distance <= match_cut, distance + AGE_PENALTY * (age_days - 1), _UNREACHABLE)
        for column in np.flatnonzero(candidates.last_seen < candidates.last_seen.max()):  # the dormant ones
            allowed = (return_clusters or {}).get(int(candidates.ids[column]))
            if allowed is not None:
                cost[np.setdiff1d(np.arange(len(centroids)), list(allowed)), column] = _UNREACHABLE
        rows, columns = linear_sum_assignment(cost)
        kept = cost[rows, columns] < _UNREACHABLE
        persona_ids[rows[kept]] = candidates.ids[columns[kept]]
        similarity[rows[kept]] = 1.0 - distance[rows[kept], columns[kept]]
        nearest_similarity = 1.0 - distance.min(axis=1)
    else:
        nearest_similarity = np.full(len(centroids), np.nan)

    sources = _main_share(memberships.drop_nulls("previous_persona_id"), "cluster", "previous_persona_id")
    # A cluster beyond the cut that holds most of the members of a persona no cluster matched is that
    # persona, moved far (k shrank and two halves of it merged, or a thin day): it inherits the id.
    taken = set(persona_ids[persona_ids >= 0].tolist())
    candidate_row = {persona_id: index for index, persona_id in enumerate(candidates.ids.tolist())}
    heirs = sorted(
        ((sources[row][1], row) for row in np.flatnonzero(persona_ids < 0).tolist() if row in sources),
        reverse=True,
    )
    for share, row in heirs:
        source = sources[row][0]
        if share >= split_share and source not in taken and source in candidate_row:
            persona_ids[row] = source
            similarity[row] = float(centroids[row] @ candidates.centroids[candidate_row[source]])
            taken.add(source)

    continued = np.flatnonzero(persona_ids >= 0)
    rows_out = [(int(persona_ids[row]), "continued", [], float(similarity[row])) for row in continued]
    # A cluster made mostly of memories no persona held on the previous date is new content: born, not split.
    new_share = dict(memberships.group_by("cluster").agg(pl.col("previous_persona_id").is_null().mean()).iter_rows())
    for row in np.flatnonzero(persona_ids < 0):
        persona_ids[row] = next_persona_id
        next_persona_id += 1
        source = sources.get(int(row))
        if source is not None and source[1] >= split_share and new_share.get(int(row), 0.0) < split_share:
            rows_out.append((int(persona_ids[row]), "split_from", [source[0]], source[1]))
        else:
            rows_out.append((int(persona_ids[row]), "born", [], _or_none(nearest_similarity[row])))

    previous_date = candidates.last_seen.max() if len(candidates.ids) else None
    kept_ids = set(persona_ids.tolist())
    destinations = _main_share(memberships.drop_nulls("previous_persona_id"), "previous_persona_id", "cluster")
    for index, persona_id in enumerate(candidates.ids.tolist()):
        if persona_id in kept_ids:
            continue
        destination = destinations.get(persona_id)
        if candidates.last_seen[index] == previous_date and destination is not None and destination[1] >= split_share:
            rows_out.append((persona_id, "merged_into", [int(persona_ids[destination[0]])], destination[1]))
        elif (np.datetime64(as_of, "D") - candidates.last_seen[index]).astype(int) >= memory_days \
                and persona_id not in closed_ids:
            rows_out.append((persona_id, "retired", [], None))
    lineage = pl.DataFrame(rows_out, schema=LINEAGE_SCHEMA, orient="row").sort("persona_id")
    return Identity(persona_ids=persona_ids, next_persona_id=next_persona_id, lineage=lineage, match_cut=match_cut)


def _main_share(memberships: pl.DataFrame, by: str, to: str) -> dict[int, tuple[int, float]]:
    """For each value of `by`, the most frequent value of `to` among its rows and its share."""
    if memberships.is_empty():
        return {}
    counts = (
        memberships.group_by(by, to).len()
        .with_columns(share=pl.col("len") / pl.col("len").sum().over(by))
        .sort(by, "len", to, descending=[False, True, False])
        .group_by(by, maintain_order=True).first()
    )
    return {int(key): (int(value), float(share)) for key, value, share in counts.select(by, to, "share").iter_rows()}


def _or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def id_stability(memory_personas: pl.DataFrame) -> dict[str, float | int]:
    """Share of (planted persona, model date) pairs whose majority persona id is the one of the
    previous model date.

    memory_personas: event_date (model date), persona_id, planted_persona_id, one row per
    memory of each date's window. Ties go to the smallest id. Also the number of pairs.
    """
    majority = (
        memory_personas.group_by("event_date", "planted_persona_id", "persona_id").len()
        .sort("event_date", "planted_persona_id", "len", "persona_id", descending=[False, False, True, False])
        .group_by("event_date", "planted_persona_id", maintain_order=True).first()
        .sort("planted_persona_id", "event_date")
        .with_columns(previous=pl.col("persona_id").shift(1).over("planted_persona_id"))
        .drop_nulls("previous")
    )
    return {
        "id_stability": float((majority["persona_id"] == majority["previous"]).mean()) if majority.height else None,
        "id_stability_pairs": majority.height,
    }


def lineage_events_outside(lineage: pl.DataFrame, allowed_dates: set[dt.date], events: tuple[str, ...]) -> pl.DataFrame:
    """Lineage rows of `events` on model dates outside `allowed_dates` (the first fit and the
    planted drift days), the day's count per event: what the truth calls spurious."""
    first_date = lineage["event_date"].min()
    return (
        lineage.filter(pl.col("event").is_in(events) & (pl.col("event_date") != first_date)
                       & ~pl.col("event_date").is_in(sorted(allowed_dates)))
        .group_by("event_date", "event").len().sort("event_date", "event")
    )
