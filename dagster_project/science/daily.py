"""One day of persona induction, composed from the replaceable parts of this package.

`memories_for_day`: events -> intent memories. `fit_day`: the sliding window of memories
as of a day -> assignments, labelled personas with evidence and quality, user personas,
with persona ids carried over from the previous day. Pure: frames in, frames out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from dagster_project.science.clustering import (
    assign_with_person_prior,
    fit_personas,
    match_persona_ids,
    recency_weights,
    similarities,
    weighted_centroids,
)
from dagster_project.science.intent_families import apply_intent_families, fit_intent_families
from dagster_project.science.catalogue import label_personas
from dagster_project.science.labelling import person_personas
from dagster_project.science.segmentation import assign_intents, segment_intent_memories
from dagster_project.science.vectorize import MemoryVectorizer


@dataclass(frozen=True)
class PersonaSettings:
    """Knobs of the persona model; DESIGN.md gives the defaults."""

    window_days: int = 28
    recent_days: int = 7
    recent_share: float = 0.6
    gap_minutes: float = 30
    k_min: int = 2
    k_max: int = 24
    k_step: int = 3
    max_match_distance: float = 0.5
    n_evidence: int = 10
    n_held_out: int = 50
    person_prior: float = 0.1
    context_weight: float = 1.0
    context_dimensions: int = 24
    n_terms: int = 10
    seed: int = 0


# BLAS/OpenMP worker threads spin while they wait: on a small shared machine (DuckDB, dbt and
# other runs compete for the cores) two threads made the intent model's fit 10x slower than one.
single_threaded = threadpool_limits.wrap(limits=1)


@single_threaded
def memories_for_day(events: pl.DataFrame, gap_minutes: float = 30) -> pl.DataFrame:
    """Intent memories of one day's events (`fct_events` columns); intents are category families."""
    # Both steps order each person's timeline; sorted once here, their own sorts find it in order.
    events = events.sort("person_id", "ts", "event_id")
    families = fit_intent_families(events, gap_minutes)
    with_intents = apply_intent_families(assign_intents(events), families)
    return segment_intent_memories(with_intents, gap_minutes=gap_minutes)


@dataclass
class DayFit:
    """Everything one model date produces; frames carry `event_date` = the model date."""

    assignments: pl.DataFrame
    personas: pl.DataFrame
    user_personas: pl.DataFrame
    vectorizer: MemoryVectorizer
    centroids: np.ndarray
    persona_ids: np.ndarray
    next_persona_id: int
    metrics: dict[str, float] = field(default_factory=dict)


def _previous_centroids(
    X: sp.csr_matrix, window: pl.DataFrame, previous: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Yesterday's personas re-expressed in today's vector space, from the memories both share."""
    shared = window.with_row_index("row").join(previous.select("memory_id", "persona_id"), on="memory_id")
    if shared.is_empty():
        return np.zeros((0, X.shape[1])), np.zeros(0, dtype=np.int64)
    previous_ids, labels = np.unique(shared["persona_id"].to_numpy(), return_inverse=True)
    rows = shared["row"].to_numpy()
    centroids = weighted_centroids(X[rows], labels, np.ones(rows.size), len(previous_ids))
    return centroids, previous_ids


def _k_candidates(previous_k: int, settings: PersonaSettings) -> range:
    """The persona count moves slowly: after a first full search, only look near yesterday's k."""
    if previous_k == 0:
        return range(settings.k_min, settings.k_max + 1)
    return range(max(settings.k_min, previous_k - settings.k_step), min(settings.k_max, previous_k + settings.k_step) + 1)


@single_threaded
def fit_day(
    window: pl.DataFrame,
    as_of: dt.date,
    previous_assignments: pl.DataFrame | None,
    next_persona_id: int,
    settings: PersonaSettings = PersonaSettings(),
) -> DayFit:
    """Personas as of `as_of`, fitted on the memories of the window [as_of - W + 1, as_of].

    `previous_assignments` (memory_id, persona_id of the previous model date) let a persona
    keep its id while it drifts; unmatched clusters get fresh ids from `next_persona_id`.
    """
    window = window.sort("event_date", "memory_id")
    weights = recency_weights(
        window["event_date"], as_of, settings.window_days, settings.recent_days, settings.recent_share
    )
    vectorizer = MemoryVectorizer(
        context_weight=settings.context_weight, context_dimensions=settings.context_dimensions, seed=settings.seed
    )
    X = vectorizer.fit_transform(window)
    if previous_assignments is not None and not previous_assignments.is_empty():
        previous_centroids, previous_ids = _previous_centroids(X, window, previous_assignments)
    else:
        previous_centroids, previous_ids = np.zeros((0, X.shape[1])), np.zeros(0, dtype=np.int64)
    fit = fit_personas(X, weights, k_range=_k_candidates(len(previous_ids), settings), seed=settings.seed)
    persona_ids, next_id = match_persona_ids(
        previous_centroids, previous_ids, fit.centroids, next_persona_id, settings.max_match_distance
    )
    similarity = similarities(X, fit.centroids)
    person_codes = window["person_id"].rank("dense").cast(pl.Int64).to_numpy() - 1
    labels = assign_with_person_prior(similarity, person_codes, settings.person_prior)
    distance = np.clip(1.0 - similarity[np.arange(labels.size), labels], 0.0, 2.0)
    assignments = window.select("memory_id", "person_id", "text", "sources").with_columns(
        persona_id=pl.Series(persona_ids[labels]),
        distance=pl.Series(distance),
        weight=pl.Series(weights),
    )
    personas = label_personas(assignments, X, labels, fit.centroids, persona_ids, weights, settings)
    users = person_personas(
        assignments.select("memory_id", "person_id", "persona_id", "weight", "distance", "text"),
        personas.select("persona_id", "label", "top_terms"),
    )
    date_column = pl.lit(as_of, dtype=pl.Date).alias("event_date")
    return DayFit(
        assignments=assignments.select(date_column, "memory_id", "persona_id", "distance"),
        personas=personas.with_columns(date_column),
        user_personas=users.with_columns(date_column),
        vectorizer=vectorizer,
        centroids=fit.centroids,
        persona_ids=persona_ids,
        next_persona_id=next_id,
        metrics={
            "n_personas": float(fit.k),
            "silhouette": float(fit.silhouette),
            "n_memories": float(window.height),
            "mean_quality": float(personas["quality"].mean()),
            "mean_truthfulness": float(personas["truthfulness"].mean()),
            "mean_evidence_alignment": float(personas["evidence_alignment"].mean()),
            "mean_coverage": float(personas["coverage"].mean()),
        },
    )
