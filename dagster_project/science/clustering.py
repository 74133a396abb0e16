"""Memory clusters over a recency-weighted sliding window (ids across days: `identity.py`).

Model: weighted k-means on a TruncatedSVD projection of the L2-normalised memory
vectors (rows re-normalised, so Euclidean k-means follows cosine similarity), then a
few spherical k-means steps in the original sparse space so that centroids live where
``assign`` and tomorrow's matching work. k is chosen by the cosine silhouette on a
recency-weighted sample, so selection costs the same for 10k or 1M memories. The final
decision per memory (``assign_with_person_prior``) adds its person's other memories as a
prior, which settles memories whose content fits several personas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize


def recency_weights(
    event_dates: pl.Series,
    as_of: dt.date,
    window_days: int = 28,
    recent_days: int = 7,
    recent_share: float = 0.6,
) -> np.ndarray:
    """Weight per row for the window [as_of - window_days + 1, as_of]; 0 outside it.

    The rows of the last ``recent_days`` days share ``recent_share`` of the total
    weight, the older rows of the window the rest, uniformly within each part. When a
    part is empty the other carries all the weight. Weights sum to 1 (all 0 if the
    window is empty).
    """
    age = (pl.lit(as_of, dtype=pl.Date) - pl.Series(event_dates).cast(pl.Date)).dt.total_days()
    age_days = pl.select(age).to_series().fill_null(-1).to_numpy()
    in_window = (age_days >= 0) & (age_days < window_days)
    recent = in_window & (age_days < recent_days)
    older = in_window & ~recent
    n_recent, n_older = recent.sum(), older.sum()
    if n_recent == 0 or n_older == 0:
        recent_share = 1.0 if n_recent else 0.0
    weights = np.zeros(age_days.size)
    if n_recent:
        weights[recent] = recent_share / n_recent
    if n_older:
        weights[older] = (1.0 - recent_share) / n_older
    return weights


def parse_source_weights(spec: str) -> dict[str, float]:
    """`"web=0.40,social=0.35,crm=0.25"` -> {"web": 0.4, ...}; `""` weighs every source the same.

    A string, so the knob reads the same in the launchpad, in MLflow's params and in the API's
    copy of the champion's settings.
    """
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, separator, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not separator or not name.strip() or weight < 0:
            raise ValueError(f"source_weights item {item!r}: expected SOURCE=WEIGHT with a weight >= 0, "
                             f"as in 'web=0.40,social=0.35,crm=0.25'")
        weights[name.strip()] = weight
    if weights and not any(weights.values()):
        raise ValueError(f"source_weights {spec!r}: at least one weight must be positive")
    return weights


def source_factors(sources: pl.Series, spec: str) -> np.ndarray:
    """Per memory, the mean weight of its sources over the mean listed weight (1 = neutral).

    `sources` holds each memory's list of sources. A source the spec does not list weighs the
    mean listed weight, so listing only some sources moves only the memories that have them;
    equal weights (or `""`) give every memory 1, today's unweighted clustering.
    """
    weights = parse_source_weights(spec)
    if not weights:
        return np.ones(len(sources))
    mean_weight = sum(weights.values()) / len(weights)
    per_source = sources.list.eval(pl.element().replace_strict(weights, default=mean_weight, return_dtype=pl.Float64))
    return (per_source.list.mean().fill_null(mean_weight) / mean_weight).to_numpy()


@dataclass(frozen=True)
class PersonaFit:
    """Result of ``fit_personas``; labels index rows of ``centroids``."""

    labels: np.ndarray
    centroids: np.ndarray
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]


def fit_personas(
    X: sp.spmatrix,
    weights: np.ndarray,
    k_range: Iterable[int] = range(6, 25),
    seed: int = 0,
    sample_size: int = 4000,
    n_components: int = 24,
    svd_fit_rows: int = 20_000,
    tolerance: float = 0.01,
    n_init: int = 3,
    refine_steps: int = 10,
    previous_labels: np.ndarray | None = None,
    person_codes: np.ndarray | None = None,
    min_people: int = 1,
) -> PersonaFit:
    """Cluster the weighted memory vectors ``X`` (L2-normalised rows), choosing k.

    k is the smallest candidate whose sample silhouette is within ``tolerance`` of the
    best: the silhouette of short texts is flat near its peak, and fewer personas read
    better. Rows with zero weight (outside the window) do not shape the clusters but
    still get the label of their nearest centroid. ``silhouette`` is that of the final
    labels on the sample, in the projection the candidates were scored in; empty
    clusters are dropped, so ``k`` can end below the chosen candidate.

    ``previous_labels`` (each row's cluster in the previous day's fit, -1: not in it) warm-starts
    the search: every candidate k starts from those clusters' weighted means in today's
    projection, one start each (`_warm_starts`: the k heaviest, or all of them with the widest split
    until there are k). A window moves by a day at a time, so yesterday's clusters are a better start than
    random ones, and ids and drift reviews stop flickering with random starts
    (docs/performance.md, round of 2026-12-05 morning: what it gains and what it costs).

    ``person_codes`` (each row's person) and ``min_people``: the rows of a cluster whose weighted rows come
    from fewer people move to their nearest other cluster (`_without_thin_clusters`), so k can also end below
    the chosen candidate that way.
    """
    X = sp.csr_matrix(X)
    weights = np.asarray(weights, dtype=float)
    active = np.flatnonzero(weights > 0)
    if active.size < 3:
        raise ValueError(f"fit_personas needs at least 3 weighted rows, got {active.size}")
    rng = np.random.default_rng(seed)
    projected = _project(X[active], n_components, seed, svd_fit_rows)
    sample = rng.choice(
        active.size,
        size=min(sample_size, active.size),
        replace=False,
        p=weights[active] / weights[active].sum(),
    )

    candidates = [k for k in k_range if 2 <= k < sample.size]
    carried = None if previous_labels is None else _carried_centres(
        projected, np.asarray(previous_labels)[active], weights[active])
    starts = {} if carried is None else _warm_starts(carried, candidates, projected[sample], seed)
    silhouette_by_k, centers_by_k = {}, {}
    for k in candidates:
        if k in starts:
            model = KMeans(n_clusters=k, init=starts[k], n_init=1, random_state=seed)
        else:
            model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        model.fit(projected[sample])
        if np.unique(model.labels_).size > 1:
            silhouette_by_k[k] = _silhouette(projected[sample], model.labels_)
            centers_by_k[k] = model.cluster_centers_
    if not silhouette_by_k:
        raise ValueError(f"no k in {list(k_range)} fits {sample.size} sampled rows")
    best = max(silhouette_by_k.values())
    chosen_k = min(k for k, score in silhouette_by_k.items() if score >= best - tolerance)

    final = KMeans(n_clusters=chosen_k, init=centers_by_k[chosen_k], n_init=1, random_state=seed)
    labels = final.fit(projected, sample_weight=weights[active]).labels_
    if person_codes is not None:
        labels = _without_thin_clusters(projected, labels, final.cluster_centers_,
                                        np.asarray(person_codes)[active], min_people)
    centroids = _spherical_refine(X[active], labels, weights[active], refine_steps)
    all_labels, _ = assign(X, centroids)
    return PersonaFit(
        labels=all_labels,
        centroids=centroids,
        k=len(centroids),
        silhouette=_silhouette(projected[sample], all_labels[active[sample]]),
        silhouette_by_k=silhouette_by_k,
    )


def _without_thin_clusters(
    points: np.ndarray, labels: np.ndarray, centres: np.ndarray, people: np.ndarray, min_people: int
) -> np.ndarray:
    """`labels` with the rows of each cluster whose rows come from fewer than `min_people` people moved, each to
    its nearest (Euclidean, as k-means measures) of the other clusters; the two best-supported clusters stay.

    On a sparse log the silhouette keeps rising with k: a few memories of one or two people sit
    apart and make a tight cluster of their own (a real 120-day log of 52 people: 23-24 personas every
    day, 18 of the first day's 23 with one or two people). Such a cluster describes those people, not a persona.
    """
    people = np.asarray(people, dtype=np.int64)
    span = int(people.max()) + 1
    label_of_pair = np.unique(labels.astype(np.int64) * span + people) // span  # one entry per (cluster, person)
    support = np.bincount(label_of_pair, minlength=len(centres))
    supported = support >= min_people
    if supported.sum() < 2:
        supported[np.argsort(-support, kind="stable")[:2]] = True
    if supported.all():
        return labels
    kept = np.flatnonzero(supported)
    distance = (centres[kept] ** 2).sum(axis=1) - 2.0 * points @ centres[kept].T  # |p|^2 is the same for every centre
    return np.where(supported[labels], labels, kept[distance.argmin(axis=1)])


def _carried_centres(projected: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """The weighted, L2-normalised mean of the projected rows of each label (-1: none), heaviest label first;
    None for fewer than two labels."""
    labelled = np.flatnonzero(labels >= 0)
    _, codes = np.unique(labels[labelled], return_inverse=True)
    if codes.size == 0 or codes.max() < 1:
        return None
    # Not `weighted_centroids`: its product (X.T @ one-hot) adds in another order, and the last bits it changes
    # moved the k-means path of tests/test_evaluation.py's 4-day world (ARI 0.750 -> 0.756).
    membership = np.zeros((codes.max() + 1, labelled.size))
    membership[codes, np.arange(labelled.size)] = weights[labelled]
    heaviest_first = np.argsort(-membership.sum(axis=1), kind="stable")
    return normalize(membership @ projected[labelled])[heaviest_first]


def _warm_starts(carried: np.ndarray, candidates: list[int], points: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    """Starting centres per candidate k from yesterday's clusters `carried` (heaviest first): the k heaviest when
    there are more (the others' members go to their nearest); when there are fewer, all of them with the widest
    cluster of `points` split in two until there are k (bisecting k-means: a new persona grows out of the one it
    splits), each larger k one split on from the one before. A k that cannot be reached (a cluster of one point
    is the widest) has no start."""
    starts = {k: carried[:k] for k in candidates if k <= len(carried)}
    centres = carried
    for k in sorted(k for k in candidates if k > len(carried)):
        while len(centres) < k:
            nearest = (points @ centres.T).argmax(axis=1)
            spread = np.bincount(nearest, weights=1.0 - (points * centres[nearest]).sum(axis=1), minlength=len(centres))
            widest = int(spread.argmax())
            members = points[nearest == widest]
            if len(members) < 2:
                return starts
            halves = normalize(KMeans(n_clusters=2, n_init=1, random_state=seed).fit(members).cluster_centers_)
            centres = np.vstack([np.delete(centres, widest, axis=0), halves])
        starts[k] = centres
    return starts


def add_novel_persona(
    X: sp.spmatrix,
    weights: np.ndarray,
    centroids: np.ndarray,
    new_rows: np.ndarray,
    person_codes: np.ndarray,
    cut: float,
    min_people: int,
    refine_steps: int = 10,
    max_seeds: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """`centroids`, or k+1 centroids when the newest memories (`new_rows`) hold a persona none explains.

    The silhouette barely moves for a group of a few dozen memories among thousands, so k alone
    finds a new interest only days after it appears. A new persona shows first as new memories
    farther than `cut` (the identity match cut: beyond it a cluster is another persona) from every
    centroid and within `cut` of each other. The densest such neighbourhood, re-centred on its
    members, seeds a k+1 spherical refit; it is a persona when its cluster survives the refit beyond
    `cut` from every other centroid and its members come from at least `min_people` people
    (scattered outliers and one person's repeats are not). Neighbours are counted among at most
    `max_seeds` of those memories, so the cost stays bounded.
    """
    X = sp.csr_matrix(X)
    floor = 1.0 - cut
    new_rows = np.asarray(new_rows)
    far = new_rows[similarities(X[new_rows], centroids).max(axis=1, initial=-1.0) < floor]
    if np.unique(person_codes[far]).size < min_people:
        return centroids
    seeds = far if far.size <= max_seeds else np.random.default_rng(seed).choice(far, max_seeds, replace=False)
    neighbours = np.asarray((X[seeds] @ X[seeds].T).todense()) >= floor
    members = seeds[neighbours[neighbours.sum(axis=1).argmax()]]
    for _ in range(2):  # the densest neighbourhood, then the far memories near its centre
        centre = weighted_centroids(X[members], np.zeros(members.size, dtype=int), weights[members], 1)
        members = far[similarities(X[far], centre)[:, 0] >= floor]
        if np.unique(person_codes[members]).size < min_people:
            return centroids
    centre = weighted_centroids(X[members], np.zeros(members.size, dtype=int), weights[members], 1)
    refitted = refit_with(X, weights, centroids, centre, refine_steps)
    if len(refitted) != len(centroids) + 1 or (refitted[:-1] @ refitted[-1]).max() >= floor:
        return centroids
    return refitted


def refit_with(
    X: sp.csr_matrix, weights: np.ndarray, centroids: np.ndarray, seeds: np.ndarray, refine_steps: int = 10
) -> np.ndarray:
    """Spherical k-means steps over the weighted rows of `X` from `centroids` and the rows of `seeds` (last);
    a cluster that empties is dropped, so fewer rows than the two together can come back."""
    active = np.flatnonzero(weights > 0)
    seeded, _ = assign(X[active], np.vstack([centroids, seeds]))
    return _spherical_refine(X[active], seeded, weights[active], refine_steps)


def weighted_centroids(
    X: sp.spmatrix, labels: np.ndarray, weights: np.ndarray, k: int
) -> np.ndarray:
    """L2-normalised weighted mean vector per label 0..k-1 (a zero row for empty labels).

    Also puts yesterday's clusters into today's vector space: transform yesterday's
    memories with today's vectoriser and average them by yesterday's labels.
    """
    # A sparse matrix times a dense one-hot block (n x k) beats two sparse matrices multiplied
    # (the 11 calls of a 1M-event fit: 1.07 -> 0.63 s), and the block in X's precision spares
    # scipy an upcast copy of X.
    membership = np.zeros((labels.size, k), dtype=np.result_type(X.dtype, np.float32))
    membership[np.arange(labels.size), labels] = weights
    return normalize(np.asarray((X.T @ membership).T, dtype=np.float64))


def assign(X: sp.spmatrix, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid per row and its cosine distance (1 - cosine similarity).

    The product runs in X's precision: float64 centroids would make scipy upcast a copy of
    the float32 memory vectors on every call (4x slower at a million events).
    """
    similarity = np.asarray(X @ np.ascontiguousarray(centroids.T, dtype=X.dtype))
    nearest = similarity.argmax(axis=1)
    distance = 1.0 - similarity[np.arange(nearest.size), nearest].astype(np.float64)
    return nearest, np.clip(distance, 0.0, 2.0)


def similarities(X: sp.spmatrix, centroids: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row to every centroid (rows and centroids L2-normalised)."""
    return np.asarray(X @ np.ascontiguousarray(centroids.T, dtype=X.dtype), dtype=np.float64)


def assign_with_person_prior(
    similarity: np.ndarray, person_codes: np.ndarray, prior_weight: float
) -> np.ndarray:
    """Persona per memory from its content and, as a prior, its person's other memories.

    A memory of a bestseller or a shared category says little on its own; the person who
    made it mostly does (per-person multi-interest). Score = cosine similarity +
    ``prior_weight`` x the share of the person's *other* memories whose content points to
    that persona (leave-one-out, so a memory never votes for itself; a person with one
    memory keeps the content decision). ``person_codes``: integer person per row.
    """
    content = similarity.argmax(axis=1)
    if prior_weight <= 0 or similarity.shape[1] < 2:
        return content
    rows = np.arange(content.size)
    counts = np.zeros((person_codes.max() + 1, similarity.shape[1]))
    np.add.at(counts, (person_codes, content), 1.0)
    others = counts[person_codes]
    others[rows, content] -= 1.0
    totals = others.sum(axis=1, keepdims=True)
    share = np.divide(others, totals, out=np.zeros_like(others), where=totals > 0)
    return (similarity + prior_weight * share).argmax(axis=1)


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Cosine silhouette of L2-normalised points; 0 when undefined (one cluster, or one point per cluster).

    Equals ``silhouette_score(points, labels, metric="cosine")`` but in O(n k d) instead of
    O(n^2 d): for unit vectors the mean cosine distance from a point to a cluster is
    1 - (point . cluster sum) / cluster size, so no pairwise matrix is needed.
    """
    _, labels = np.unique(labels, return_inverse=True)
    k = labels.max() + 1 if labels.size else 0
    if not 1 < k < len(labels):
        return 0.0
    sizes = np.bincount(labels, minlength=k).astype(float)
    # A one-hot product adds each cluster's points in row order, like np.add.at, at a seventh of its cost.
    one_hot = sp.csr_matrix((np.ones(labels.size), (labels, np.arange(labels.size))), shape=(k, labels.size))
    cluster_sums = np.asarray(one_hot @ points)
    similarity_sums = points @ cluster_sums.T
    rows = np.arange(labels.size)
    own_size = sizes[labels]
    within = (own_size - similarity_sums[rows, labels]) / np.maximum(own_size - 1, 1)
    to_other = 1.0 - similarity_sums / sizes
    to_other[rows, labels] = np.inf
    nearest_other = to_other.min(axis=1)
    spread = np.maximum(within, nearest_other)
    scores = np.divide(nearest_other - within, spread, out=np.zeros_like(spread), where=(spread > 0) & (own_size > 1))
    return float(scores.mean())


def _project(X: sp.csr_matrix, n_components: int, seed: int, fit_rows: int) -> np.ndarray:
    """Row-normalised TruncatedSVD projection (the identity-like fallback for tiny X).

    The SVD is fitted on at most ``fit_rows`` random rows and then projects every row: 24
    directions are as well estimated from 20,000 memories as from all. On a 1M-event day
    (164k memories) the fit took 0.3 s instead of 1.6 s; k stayed 23, the silhouette 0.850
    against 0.855, and the two fits' labels agree at ARI 0.979.
    """
    n_components = min(n_components, X.shape[1] - 1, X.shape[0] - 1)
    if n_components < 2:
        return normalize(X.toarray())
    svd = TruncatedSVD(n_components=n_components, random_state=seed)
    if X.shape[0] <= fit_rows:
        return normalize(svd.fit_transform(X))
    rows = np.random.default_rng(seed).choice(X.shape[0], size=fit_rows, replace=False)
    return normalize(svd.fit(X[rows]).transform(X))


def _spherical_refine(
    X: sp.csr_matrix, labels: np.ndarray, weights: np.ndarray, steps: int
) -> np.ndarray:
    """Weighted spherical k-means steps in the sparse space; drops clusters that empty."""
    _, labels = np.unique(labels, return_inverse=True)
    for _ in range(steps):
        new_labels, _ = assign(X, weighted_centroids(X, labels, weights, labels.max() + 1))
        if np.array_equal(new_labels, labels):
            break
        _, labels = np.unique(new_labels, return_inverse=True)
    return weighted_centroids(X, labels, weights, labels.max() + 1)
