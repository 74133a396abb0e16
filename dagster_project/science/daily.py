"""One day of persona induction, composed from the replaceable parts of this package.

`memories_for_day`: events -> intent memories. `fit_day`: the sliding window of memories
as of a day -> assignments, labelled personas with evidence and quality, user personas,
parent personas over them, with ids carried over from the recent days and the lineage of
every persona. Pure: frames in, frames out.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from dagster_project.science.catalogue import FACT_LIST_COLUMNS, label_personas
from dagster_project.science.clustering import (
    add_novel_persona,
    assign_with_person_prior,
    fit_personas,
    recency_weights,
    similarities,
    source_factors,
    weighted_centroids,
)
from dagster_project.science.hierarchy import parent_groups
from dagster_project.science.identity import (
    LINEAGE_SCHEMA,
    Identity,
    carry_identity,
    learned_match_cut,
    recent_candidates,
    reconcile_with_previous,
)
from dagster_project.science.intent_families import apply_intent_families, families_of_sessions, sessions
from dagster_project.science.labelling import person_personas, term_presence
from dagster_project.science.segmentation import SESSION, IntentModel, assign_intents, segment_sessions
from dagster_project.science.vectorize import MemoryVectorizer


@dataclass(frozen=True)
class PersonaSettings:
    """Knobs of the persona model; docs/design.md describes them."""

    window_days: int = 28
    recent_days: int = 7
    recent_share: float = 0.6
    gap_minutes: float = 30
    k_min: int = 2
    k_max: int = 24
    k_step: int = 3
    min_persona_people: int = 5  # people a k-means cluster's memories must come from (`clustering._without_thin_clusters`)
    max_match_distance: float = 0.5  # ceiling of the learned cut (`identity.learned_match_cut`)
    identity_memory_days: int = 7  # model dates a persona may be missing and still keep its id
    split_share: float = 0.5  # share of a cluster's members from one persona that makes it a split
    parent_distance_ratio: float = 0.9  # personas under one parent: closer than this x the median pair
    n_evidence: int = 10
    n_held_out: int = 50
    person_prior: float = 0.1
    context_weight: float = 1.0
    # Weighted clustering of sources, e.g. "web=0.40,social=0.35,crm=0.25": a memory weighs the mean of its
    # sources' weights (unlisted sources: the mean listed weight) in the fit and in each person's personas.
    source_weights: str = ""
    context_dimensions: int = 24
    n_terms: int = 10
    seed: int = 0


# BLAS/OpenMP worker threads spin while they wait: on a small shared machine (DuckDB, dbt and
# other runs compete for the cores) two threads made the intent model's fit 10x slower than one.
single_threaded = threadpool_limits.wrap(limits=1)


@single_threaded
def memories_for_day(events: pl.DataFrame, gap_minutes: float = 30) -> pl.DataFrame:
    """Intent memories of one day's events (`fct_events` columns); intents are category families."""
    # The intent model learns from (text, category) pairs whatever their order: it fits on one core
    # while the events are sorted once and cut once into sessions for the families and the segmentation.
    with ThreadPoolExecutor(max_workers=1) as background:
        # OpenMP's thread count is per thread: the worker sets its own.
        intent_model = background.submit(single_threaded(IntentModel().fit), events["text"], events["category"])
        events = events.sort("person_id", "ts", "event_id")
        session = sessions(events, gap_minutes).alias(SESSION)
        families = families_of_sessions(session, events["category"])
        with_intents = apply_intent_families(assign_intents(events, intent_model.result()), families)
    return segment_sessions(with_intents.with_columns(session))


@dataclass
class DayFit:
    """Everything one model date produces; frames carry `event_date` = the model date.

    `personas` carry `parent_persona_id` (null: no parent); `parents` are the parent personas,
    labelled like personas, with their `child_persona_ids`; `lineage` has a row per persona and
    parent that was born, continued, split, merged or retired on the day (`level` tells which).
    """

    assignments: pl.DataFrame
    personas: pl.DataFrame
    user_personas: pl.DataFrame
    vectorizer: MemoryVectorizer
    centroids: np.ndarray
    persona_ids: np.ndarray
    next_persona_id: int
    parents: pl.DataFrame = field(default_factory=pl.DataFrame)
    lineage: pl.DataFrame = field(default_factory=pl.DataFrame)
    metrics: dict[str, float] = field(default_factory=dict)


def memory_weights(window: pl.DataFrame, as_of: dt.date, settings: PersonaSettings) -> np.ndarray:
    """Each window memory's weight: recency (60/40 by default) times its sources' weight, summing to 1."""
    weights = recency_weights(
        window["event_date"], as_of, settings.window_days, settings.recent_days, settings.recent_share
    ) * source_factors(window["sources"], settings.source_weights)
    total = weights.sum()
    return weights / total if total > 0 else weights


def _k_candidates(previous_k: int, n_people: int, settings: PersonaSettings) -> range:
    """The persona count moves slowly: after a first full search, only look near yesterday's k. No more
    personas than the window's people can support with `min_persona_people` each (at least `k_min`)."""
    ceiling = max(settings.k_min, min(settings.k_max, n_people // max(1, settings.min_persona_people)))
    if previous_k == 0:
        return range(settings.k_min, ceiling + 1)
    return range(min(max(settings.k_min, previous_k - settings.k_step), ceiling),
                 min(ceiling, previous_k + settings.k_step) + 1)


def _identity(
    X: sp.csr_matrix,
    window: pl.DataFrame,
    labels: np.ndarray,
    centroids: np.ndarray,
    history: pl.DataFrame | None,
    recent_lineage: pl.DataFrame | None,
    as_of: dt.date,
    next_persona_id: int,
    settings: PersonaSettings,
    learn_cut_from_moves: bool = True,
) -> Identity:
    """Ids for the clusters `labels` (-1: none) of the window's rows index, matched against `history`
    (event_date, memory_id, persona_id of the recent model dates) with a cut learned from the
    moves in `recent_lineage` (persona_id, event, similarity of the same level) unless
    `learn_cut_from_moves` is off (parents: a child joining moves a parent by design)."""
    candidates = recent_candidates(X, window["memory_id"], history)
    moves = _recorded_moves(recent_lineage) if learn_cut_from_moves else np.zeros(0)
    closed = frozenset()
    if recent_lineage is not None and not recent_lineage.is_empty():
        last_events = recent_lineage.sort("event_date").group_by("persona_id").agg(pl.col("event").last())
        closed = frozenset(last_events.filter(pl.col("event") == "merged_into")["persona_id"].to_list())
    # Rows outside every cluster (memories of personas without a parent) neither split nor merge anything.
    memberships = window.select("memory_id").with_columns(cluster=pl.Series(labels, dtype=pl.Int64))
    return_clusters = {}
    if history is not None and not history.is_empty():
        previous_day = history.filter(pl.col("event_date") == pl.col("event_date").max())
        memberships = memberships.join(
            previous_day.select("memory_id", previous_persona_id="persona_id"), on="memory_id", how="left"
        )
        return_clusters = _return_clusters(history, memberships.filter(pl.col("cluster") >= 0), len(centroids))
    else:
        memberships = memberships.with_columns(previous_persona_id=pl.lit(None, dtype=pl.Int64))
    return carry_identity(
        centroids, candidates, memberships.filter(pl.col("cluster") >= 0), as_of, next_persona_id,
        learned_match_cut(moves, centroids, settings.max_match_distance),
        memory_days=settings.identity_memory_days, closed_ids=closed, split_share=settings.split_share,
        return_clusters=return_clusters,
    )


def _previous_labels(window: pl.DataFrame, latest: pl.DataFrame) -> np.ndarray:
    """Each window row's persona id in `latest` (memory_id, persona_id of the latest earlier model date; -1: the
    memory was not in that fit)."""
    return window.select("memory_id").join(
        latest.select("memory_id", "persona_id"), on="memory_id", how="left", maintain_order="left"
    )["persona_id"].fill_null(-1).to_numpy()


def _return_clusters(history: pl.DataFrame, memberships: pl.DataFrame, k: int) -> dict[int, frozenset[int]]:
    """Per persona of `history`, today's clusters holding at least 1/k of the memories of its latest day
    (none when there are no clusters today, e.g. a day without parent personas)."""
    if k == 0:
        return {}
    latest = history.filter(pl.col("event_date") == pl.col("event_date").max().over("persona_id"))
    shares = (
        latest.select("memory_id", "persona_id").join(memberships.select("memory_id", "cluster"), on="memory_id")
        .group_by("persona_id", "cluster").len()
        .with_columns(share=pl.col("len") / pl.col("len").sum().over("persona_id"))
    )
    held = shares.group_by("persona_id").agg(pl.col("cluster").filter(pl.col("share") >= 1.0 / k))
    return {persona_id: frozenset(clusters) for persona_id, clusters in held.iter_rows()}


def _recorded_moves(recent_lineage: pl.DataFrame | None) -> np.ndarray:
    """The day-to-day moves (cosine distances) of the `continued` rows of `recent_lineage`."""
    if recent_lineage is None or recent_lineage.is_empty():
        return np.zeros(0)
    return 1.0 - recent_lineage.filter(pl.col("event") == "continued")["similarity"].drop_nulls().to_numpy()


def _reconciled_with_previous(
    X: sp.csr_matrix, window: pl.DataFrame, weights: np.ndarray, centroids: np.ndarray, person_codes: np.ndarray,
    history: pl.DataFrame | None, recent_lineage: pl.DataFrame | None, settings: PersonaSettings,
) -> np.ndarray:
    """`centroids` with a flicker of the day's k undone: a persona of the previous model date folded into a
    neighbour kept, a catch-all between personas let go (`identity.reconcile_with_previous`, with the identity
    match cut and `_support` people)."""
    cut = learned_match_cut(_recorded_moves(recent_lineage), centroids, settings.max_match_distance)
    candidates = recent_candidates(X, window["memory_id"], history)
    return reconcile_with_previous(X, weights, centroids, candidates, cut, person_codes, _support(settings))


def _with_novel_persona(
    X: sp.csr_matrix, window: pl.DataFrame, weights: np.ndarray, centroids: np.ndarray, as_of: dt.date,
    person_codes: np.ndarray, recent_lineage: pl.DataFrame | None, settings: PersonaSettings,
) -> np.ndarray:
    """`centroids`, refitted with one more when the memories of the last `recent_days` hold a persona none of
    them explains (`clustering.add_novel_persona`: beyond the identity match cut, from at least `_support`
    people). A week, not a day: the new persona keeps its cluster
    on the days after its birth until the silhouette's k takes it in."""
    cut = learned_match_cut(_recorded_moves(recent_lineage), centroids, settings.max_match_distance)
    new_rows = np.flatnonzero((window["event_date"] > as_of - dt.timedelta(days=settings.recent_days)).to_numpy())
    return add_novel_persona(X, weights, centroids, new_rows, person_codes, cut, _support(settings), seed=settings.seed)


def _support(settings: PersonaSettings) -> int:
    """People a persona re-added or born outside the k search needs: enough for its evidence, and never fewer
    than the k search asks of its clusters."""
    return max(settings.n_evidence, settings.min_persona_people)


def _at_level(frame: pl.DataFrame | None, level: str, id_column: str) -> pl.DataFrame | None:
    """The rows of one level of the recent history or lineage, ids in `persona_id`."""
    if frame is None or frame.is_empty():
        return None
    if "level" in frame.columns:
        frame = frame.filter(pl.col("level") == level)
    return frame.drop_nulls(id_column).with_columns(persona_id=pl.col(id_column))


@dataclass(frozen=True)
class PreparedWindow:
    """What a day's fit computes from its window alone, before anything of earlier days: the window in fit
    order, its memory weights, the fitted vectoriser and vectors, and the words of every memory. A range's
    next windows can be prepared elsewhere while the chain fits the day before (`window_preparer.WindowPreparer`)."""

    window: pl.DataFrame
    weights: np.ndarray
    vectorizer: MemoryVectorizer
    vectors: sp.csr_matrix
    presence: tuple[sp.csr_matrix, np.ndarray]


WINDOW_ORDER = ("event_date", "memory_id")  # the rows' order in a fit: vectors and assignments follow it


@single_threaded
def prepare_window(window: pl.DataFrame, as_of: dt.date, settings: PersonaSettings = PersonaSettings()) -> PreparedWindow:
    """The window-only part of `fit_day` for model date `as_of`."""
    window = window.sort(*WINDOW_ORDER)
    vectorizer = MemoryVectorizer(
        context_weight=settings.context_weight, context_dimensions=settings.context_dimensions, seed=settings.seed
    )
    vectors = vectorizer.fit_transform(window)
    presence = term_presence(window["text"])  # the c-TF-IDF words of every memory, for personas and parents
    return PreparedWindow(window, memory_weights(window, as_of, settings), vectorizer, vectors, presence)


@single_threaded
def fit_day(
    window: pl.DataFrame,
    as_of: dt.date,
    history: pl.DataFrame | None,
    next_persona_id: int,
    settings: PersonaSettings = PersonaSettings(),
    recent_lineage: pl.DataFrame | None = None,
    previous_personas: pl.DataFrame | None = None,
    prepared: PreparedWindow | None = None,
) -> DayFit:
    """Personas as of `as_of`, fitted on the memories of the window [as_of - W + 1, as_of].

    `previous_personas` (the latest earlier `personas` rows, with that day's `persona_parents` rows: ids
    name one thing) keep each persona's and parent's label wording while it still holds, so labels do
    not churn from day to day.

    `history` (event_date, memory_id, persona_id, parent_persona_id of the model dates of the
    last `identity_memory_days` days) lets a persona keep its id while it drifts or is missing
    for a few days; `recent_lineage` (the `persona_lineage` rows of those days) teaches the
    match cut. New personas and parents get fresh ids from `next_persona_id`.

    `prepared`: `prepare_window(window, as_of, settings)`, when it was computed ahead (`window` is then unused).
    """
    prepared = prepared or prepare_window(window, as_of, settings)
    window, weights, vectorizer, X = prepared.window, prepared.weights, prepared.vectorizer, prepared.vectors
    persona_history = _at_level(history, "persona", "persona_id")
    latest = None if persona_history is None else persona_history.filter(
        pl.col("event_date") == pl.col("event_date").max())
    previous_k = 0 if latest is None else latest["persona_id"].n_unique()
    person_codes = window["person_id"].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_people = np.unique(person_codes[weights > 0]).size
    fit = fit_personas(X, weights, k_range=_k_candidates(previous_k, n_people, settings), seed=settings.seed,
                       previous_labels=None if latest is None else _previous_labels(window, latest),
                       person_codes=person_codes, min_people=settings.min_persona_people)
    persona_lineage = _at_level(recent_lineage, "persona", "persona_id")
    centroids = _reconciled_with_previous(
        X, window, weights, fit.centroids, person_codes, persona_history, persona_lineage, settings)
    centroids = _with_novel_persona(X, window, weights, centroids, as_of, person_codes, persona_lineage, settings)
    similarity = similarities(X, centroids)
    labels = assign_with_person_prior(similarity, person_codes, settings.person_prior)
    identity = _identity(
        X, window, labels, centroids, persona_history, persona_lineage, as_of, next_persona_id, settings,
    )
    persona_ids = identity.persona_ids
    distance = np.clip(1.0 - similarity[np.arange(labels.size), labels], 0.0, 2.0)
    label_facts = [column for column in FACT_LIST_COLUMNS if column in window.columns]  # labels ground in them
    assignments = window.select("memory_id", "person_id", "text", "sources", *label_facts).with_columns(
        persona_id=pl.Series(persona_ids[labels]),
        distance=pl.Series(distance),
        weight=pl.Series(weights),
    )
    personas = label_personas(assignments, X, labels, centroids, persona_ids, weights, settings, previous_personas,
                              prepared.presence)
    # Parents: agglomerated personas, matched over the recent days like them (ids from the same sequence).
    group, parent_centroids = _parent_centroids(X, labels, centroids, weights, settings)
    parent_identity = _identity(
        X, window, group[labels], parent_centroids, _at_level(history, "parent", "parent_persona_id"),
        _at_level(recent_lineage, "parent", "persona_id"), as_of, identity.next_persona_id, settings,
        learn_cut_from_moves=False,
    )
    parents, parent_of_persona = _labelled_parents(
        assignments, X, group[labels], parent_centroids, parent_identity.persona_ids, group, persona_ids, weights,
        settings, previous_personas, prepared.presence,
    )
    personas = personas.join(parent_of_persona, on="persona_id", how="left")
    if parents.is_empty():  # no parent today: an empty table of the parents' columns
        parents = personas.drop("parent_persona_id").clear().with_columns(
            child_persona_ids=pl.lit(None, dtype=pl.List(pl.Int64)))
    users = person_personas(
        assignments.select("memory_id", "person_id", "persona_id", "weight", "distance", "text"),
        personas.select("persona_id", "label", "top_terms"),
    )
    date_column = pl.lit(as_of, dtype=pl.Date).alias("event_date")
    lineage = pl.concat([
        identity.lineage.with_columns(level=pl.lit("persona")),
        parent_identity.lineage.with_columns(level=pl.lit("parent")),
    ]).select(date_column, "level", *LINEAGE_SCHEMA)
    return DayFit(
        assignments=assignments.select(date_column, "memory_id", "persona_id", "distance"),
        personas=personas.with_columns(date_column),
        user_personas=users.with_columns(date_column),
        vectorizer=vectorizer,
        centroids=centroids,
        persona_ids=persona_ids,
        next_persona_id=parent_identity.next_persona_id,
        parents=parents.with_columns(date_column),
        lineage=lineage,
        metrics={
            "n_personas": float(len(centroids)),
            "n_parents": float(parents.height),
            "silhouette": float(fit.silhouette),
            "n_memories": float(window.height),
            "match_cut": identity.match_cut,
            "personas_born": float((identity.lineage["event"] == "born").sum()),
            "personas_split": float((identity.lineage["event"] == "split_from").sum()),
            "personas_merged": float((identity.lineage["event"] == "merged_into").sum()),
            "personas_retired": float((identity.lineage["event"] == "retired").sum()),
            "mean_quality": float(personas["quality"].mean()),
            "mean_truthfulness": float(personas["truthfulness"].mean()),
            "mean_evidence_alignment": float(personas["evidence_alignment"].mean()),
            "mean_coverage": float(personas["coverage"].mean()),
        },
    )


def _parent_centroids(
    X: sp.csr_matrix, labels: np.ndarray, centroids: np.ndarray, weights: np.ndarray, settings: PersonaSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Parent index per persona (-1: none) and the parents' centroids, from their children's memories."""
    group = parent_groups(centroids, settings.parent_distance_ratio)
    row_group = group[labels]
    in_parent = row_group >= 0
    n_parents = int(group.max()) + 1
    if not n_parents:
        return group, np.zeros((0, X.shape[1]))
    return group, weighted_centroids(X[in_parent], row_group[in_parent], weights[in_parent], n_parents)


def _labelled_parents(
    assignments: pl.DataFrame,
    X: sp.csr_matrix,
    row_group: np.ndarray,
    parent_centroids: np.ndarray,
    parent_ids: np.ndarray,
    group: np.ndarray,
    persona_ids: np.ndarray,
    weights: np.ndarray,
    settings: PersonaSettings,
    previous_labels: pl.DataFrame | None = None,
    presence: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The parents labelled like personas from their children's memories (`row_group`: parent index
    per memory, -1 none) with their `child_persona_ids`, and (persona_id, parent_persona_id).
    `previous_labels` (yesterday's rows, parents among them) keep a parent's wording while it holds;
    `presence` is the personas' `term_presence` of the assignments, reused for the parents' rows."""
    parent_of_persona = pl.DataFrame({
        "persona_id": persona_ids,
        "parent_persona_id": [int(parent_ids[index]) if index >= 0 else None for index in group.tolist()],
    }, schema={"persona_id": pl.Int64, "parent_persona_id": pl.Int64})
    if not len(parent_ids):
        return pl.DataFrame(), parent_of_persona
    in_parent = row_group >= 0
    rows = row_group[in_parent]
    similarity = similarities(X[in_parent], parent_centroids)[np.arange(rows.size), rows]
    parent_assignments = assignments.filter(pl.Series(in_parent)).with_columns(
        persona_id=pl.Series(parent_ids[rows]), distance=pl.Series(np.clip(1.0 - similarity, 0.0, 2.0)),
    )
    parents = label_personas(
        parent_assignments, X[in_parent], rows, parent_centroids, parent_ids, weights[in_parent], settings,
        previous_labels, None if presence is None else (presence[0][in_parent], presence[1]),
    )
    children = parent_of_persona.drop_nulls("parent_persona_id").group_by("parent_persona_id").agg(
        pl.col("persona_id").sort().alias("child_persona_ids")
    )
    return parents.join(children.rename({"parent_persona_id": "persona_id"}), on="persona_id", how="left"), \
        parent_of_persona
