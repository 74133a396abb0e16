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
from dagster_project.science.labelling import (
    MIN_SUPPORT,
    check_label_grounded,
    ctfidf_term_weights,
    held_out_memories,
    label_persona,
    person_personas,
    persona_explanations,
    select_evidence,
)
from dagster_project.science.metrics import cohesion, coverage, evidence_alignment, quality, truthfulness
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
    personas = _label_personas(assignments, X, labels, fit.centroids, persona_ids, weights, settings)
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


def _label_personas(
    assignments: pl.DataFrame,
    X: sp.csr_matrix,
    labels: np.ndarray,
    centroids: np.ndarray,
    persona_ids: np.ndarray,
    weights: np.ndarray,
    settings: PersonaSettings,
) -> pl.DataFrame:
    """c-TF-IDF terms, evidence, label, description and quality per persona (a loop per persona).

    The label is written from the evidence (the memories closest to the centroid) and
    must be supported there; alignment and truthfulness are scored on a seeded sample of
    the other members, coverage on all of them.
    """
    weighted = assignments.filter(pl.col("weight") > 0)
    docs = weighted.group_by("persona_id").agg(pl.col("text").fill_null(""))
    term_weights = ctfidf_term_weights(dict(zip(docs["persona_id"], docs["text"], strict=True)), top_n=settings.n_terms)
    terms_by_persona = {persona_id: [term for term, _ in terms] for persona_id, terms in term_weights.items()}
    evidence = select_evidence(weighted.select("memory_id", "persona_id", "distance"), n=settings.n_evidence)
    held_out = held_out_memories(
        weighted.select("memory_id", "persona_id", "text"), evidence, settings.n_held_out, settings.seed
    ).partition_by("persona_id", as_dict=True)
    members = weighted.select("memory_id", "persona_id", "person_id", "text", "sources").partition_by(
        "persona_id", as_dict=True
    )
    sizes = weighted.group_by("persona_id").agg(
        pl.len().alias("n_memories"),
        pl.col("person_id").n_unique().alias("n_users"),
        pl.col("weight").sum().alias("share"),
    )
    cohesion_by_label = cohesion(X, labels, centroids, weights)
    no_rows = pl.DataFrame(schema={"memory_id": pl.String, "person_id": pl.String, "text": pl.String,
                                   "sources": pl.List(pl.String)})
    rows = []
    for label_index, persona_id in enumerate(persona_ids.tolist()):
        evidence_ids = evidence.filter(pl.col("persona_id") == persona_id)["evidence_memory_ids"]
        evidence_ids = evidence_ids.item() if evidence_ids.len() else []
        persona_members = members.get((persona_id,), no_rows)
        evidence_rows = persona_members.filter(pl.col("memory_id").is_in(evidence_ids))
        evidence_texts = evidence_rows["text"].fill_null("").to_list()
        terms = terms_by_persona.get(persona_id, [])
        persona_label = label_persona(terms, evidence_texts, evidence_rows["sources"].to_list())
        check_label_grounded(persona_label, evidence_texts)
        held_out_texts = held_out.get((persona_id,), no_rows)["text"].fill_null("").to_list()
        scores = (
            float(cohesion_by_label[label_index]),
            evidence_alignment(persona_label.label_terms, held_out_texts),
            truthfulness(persona_label.label, persona_label.description, held_out_texts,
                         min_share=MIN_SUPPORT / settings.n_evidence),
            coverage(persona_label.label_terms, persona_members["text"], persona_members["person_id"]),
        )
        rows.append({
            "persona_id": persona_id,
            "label": persona_label.label,
            "description": persona_label.description,
            "top_terms": terms,
            "label_terms": persona_label.label_terms,
            "cohesion": scores[0],
            "evidence_alignment": scores[1],
            "truthfulness": scores[2],
            "coverage": scores[3],
            "quality": quality(*scores),
            "evidence_memory_ids": list(evidence_ids),
        })
    catalogue = pl.DataFrame(
        rows,
        schema={
            "persona_id": pl.Int64, "label": pl.String, "description": pl.String,
            "top_terms": pl.List(pl.String), "label_terms": pl.List(pl.String),
            "cohesion": pl.Float64, "evidence_alignment": pl.Float64, "truthfulness": pl.Float64,
            "coverage": pl.Float64, "quality": pl.Float64, "evidence_memory_ids": pl.List(pl.String),
        },
    )
    return (
        catalogue.join(sizes, on="persona_id", how="left")
        .join(persona_explanations(weighted.select("memory_id", "persona_id", "sources", "weight"), term_weights),
              on="persona_id", how="left")
        .with_columns(pl.col("n_memories", "n_users").fill_null(0), pl.col("share").fill_null(0.0))
        .filter(pl.col("n_memories") > 0)
        .select(
            "persona_id", "label", "description", "top_terms", "label_terms", "n_memories", "n_users",
            "share", "cohesion", "evidence_alignment", "truthfulness", "coverage", "quality", "evidence_memory_ids",
            "explanation",
        )
        .sort("persona_id")
    )
