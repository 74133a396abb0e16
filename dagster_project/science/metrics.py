"""Persona quality (docs/design.md, all in [0, 1]) and evaluation.

Quality, per persona, needs no judge: cohesion, and on member memories the label was
not written from, evidence_alignment (memories that support the label's domain or focus)
and truthfulness (description claims that hold within 5 points); coverage over all its
people; quality is their mean.
Evaluation against planted truth (sample data only):
  ARI/NMI of memory -> persona, per-person persona F1, label-term precision.
Next-day utility (rankers and Hit@K / Recall@K) lives in science/recommenders.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dagster_project.science.labelling import CLAIM_DTYPE, CLAIM_TOLERANCE, normalised, statistic_shares

# --- quality -------------------------------------------------------------------------


def cohesion(
    X: sp.spmatrix, labels: np.ndarray, centroids: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Per centroid: weighted mean cosine similarity of its members, clipped to [0, 1].

    Rows of X and centroids are L2-normalised. A centroid with no weighted member
    scores 0.
    """
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=float)
    similarity = np.asarray(X @ centroids.T)[np.arange(labels.size), labels]
    k = len(centroids)
    totals = np.bincount(labels, weights=weights, minlength=k)
    weighted_sums = np.bincount(labels, weights=weights * similarity, minlength=k)
    means = np.divide(weighted_sums, totals, out=np.zeros(k), where=totals > 0)
    return np.clip(means, 0.0, 1.0)


def evidence_alignment(memories: pl.DataFrame, domain_categories: Sequence[str], focus: Sequence[str]) -> float:
    """Share of ``memories`` (categories, text) that support the label (``label_support``), 0 if none.

    Scored on held-out member memories (``labelling.held_out_memories``), never on the
    memories the label was written from.
    """
    one = evidence_alignments(memories.with_columns(persona_id=pl.lit(0)), _one_label(domain_categories, focus))
    return float(one["evidence_alignment"][0])


def truthfulness(claims: Sequence[dict], memories: pl.DataFrame, tolerance: float = CLAIM_TOLERANCE) -> float:
    """Share of the description's claims that hold on ``memories``: the share of them with the
    claim's fact (category, action or source) lies within ``tolerance`` of the share stated.

    ``claims``: text, statistic, value (``labelling.PersonaLabel.claims``); ``memories``:
    categories, actions, sources -- held-out members, not those the description was written from.
    No claim, or no memory, scores 0: a description that says nothing is not true.
    """
    one = truthfulnesses(memories.with_columns(persona_id=pl.lit(0)), _one_label([], [], claims), tolerance)
    return float(one["truthfulness"][0])


def coverage(memories: pl.DataFrame, domain_categories: Sequence[str], focus: Sequence[str]) -> float:
    """Share of a persona's people with at least one member memory that supports the label.

    ``memories``: person_id, categories, text, one row per member memory. 0 without members or label.
    """
    one = coverages(memories.with_columns(persona_id=pl.lit(0)), _one_label(domain_categories, focus))
    return float(one["coverage"][0])


def _one_label(domain_categories: Sequence[str], focus: Sequence[str], claims: Sequence[dict] = ()) -> pl.DataFrame:
    """The ``labels`` frame of the batch scores for a single persona, persona_id 0."""
    return pl.DataFrame(
        {"persona_id": [0], "domain_categories": [list(domain_categories)], "focus": [list(focus)],
         "claims": [list(claims)]},
        schema={"persona_id": pl.Int64, "domain_categories": pl.List(pl.String), "focus": pl.List(pl.String),
                "claims": CLAIM_DTYPE},
    )


# The batch scores: every persona of ``labels`` (persona_id, domain_categories, focus; claims for
# truthfulness) scored on its rows of ``memories`` (persona_id and the columns each score reads) at
# once, one row per persona of ``labels`` in its order; a persona without memories or label scores 0.


def label_support(memories: pl.DataFrame, labels: pl.DataFrame) -> pl.Series:
    """Per memory (persona_id, categories, text): does it speak for its persona's label -- a category of
    the label's domain among its categories, or a focus phrase in its text (as whole words, see ``labelling``)."""
    memories = memories.select("persona_id", "categories", "text").with_row_index("_memory")
    by_category = (
        memories.join(labels.select("persona_id", "domain_categories"), on="persona_id", how="left",
                      maintain_order="left")
        .select(pl.col("categories").cast(pl.List(pl.String)).list.set_intersection("domain_categories").list.len() > 0)
        .to_series().fill_null(False)
    )
    phrases = labels.select("persona_id", "focus").explode("focus").drop_nulls("focus")
    with_phrase = (
        memories.select("_memory", "persona_id", text=normalised(pl.col("text").fill_null("")))
        .join(phrases.select("persona_id", phrase=normalised(pl.col("focus"))), on="persona_id")
        .filter(pl.col("text").str.contains(pl.col("phrase"), literal=True))["_memory"]
    )
    return (by_category | memories["_memory"].is_in(with_phrase.implode())).alias("supports")


def evidence_alignments(memories: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """``evidence_alignment`` of every persona: persona_id, evidence_alignment."""
    shares = (
        memories.select("persona_id", label_support(memories, labels))
        .group_by("persona_id").agg(evidence_alignment=pl.col("supports").mean())
    )
    return _per_label(labels.filter(_has_label()), shares, labels, "evidence_alignment")


def coverages(memories: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """``coverage`` of every persona (``memories``: persona_id, person_id, categories, text): persona_id, coverage."""
    shares = (
        memories.select("persona_id", "person_id", label_support(memories, labels))
        .group_by("persona_id", "person_id").agg(pl.col("supports").any())
        .group_by("persona_id").agg(coverage=pl.col("supports").mean())
    )
    return _per_label(labels.filter(_has_label()), shares, labels, "coverage")


def truthfulnesses(memories: pl.DataFrame, labels: pl.DataFrame, tolerance: float = CLAIM_TOLERANCE) -> pl.DataFrame:
    """``truthfulness`` of every persona's claims (``labels``: persona_id, claims): persona_id, truthfulness."""
    claims = labels.select("persona_id", "claims").explode("claims").drop_nulls("claims").unnest("claims")
    holds = (
        statistic_shares(memories, claims.select("persona_id", "statistic", "value"))
        .group_by("persona_id")
        .agg(truthfulness=((pl.col("share") - pl.col("value")).abs() <= tolerance + 1e-9).mean())
    )
    return _per_label(labels.join(memories.select("persona_id").unique(), on="persona_id", how="semi"), holds, labels,
                      "truthfulness")


def _has_label() -> pl.Expr:
    return (pl.col("domain_categories").list.len().fill_null(0) > 0) | (pl.col("focus").list.len().fill_null(0) > 0)


def _per_label(scored: pl.DataFrame, scores: pl.DataFrame, labels: pl.DataFrame, name: str) -> pl.DataFrame:
    """``scores`` of the personas in ``scored``, 0 for the other ``labels``, one row per label in its order."""
    return labels.select("persona_id").join(
        scores.join(scored.select("persona_id"), on="persona_id", how="semi"), on="persona_id", how="left",
        maintain_order="left",
    ).with_columns(pl.col(name).fill_null(0.0))


def quality(*scores: float | np.ndarray) -> float | np.ndarray:
    """Mean of the quality measures (cohesion, held-out alignment and truthfulness, coverage), per persona
    when they are arrays of all personas' scores (summed in the same order either way)."""
    return np.mean(np.stack(scores), axis=0)


# --- evaluation against planted truth ------------------------------------------------


def clustering_agreement(personas: Sequence, planted: Sequence) -> dict[str, float]:
    """ARI and NMI of memory -> persona against memory -> planted persona."""
    return {
        "ari": float(adjusted_rand_score(planted, personas)),
        "nmi": float(normalized_mutual_info_score(planted, personas)),
    }


def map_personas_to_planted(memory_personas: pl.DataFrame) -> pl.DataFrame:
    """Planted persona each persona stands for: the majority among its memories.

    Input columns persona_id, planted_persona_id (one row per memory); ties go to the
    smallest planted id. Output persona_id, planted_persona_id.
    """
    return (
        memory_personas.group_by("persona_id", "planted_persona_id")
        .agg(pl.len().alias("n"))
        .sort("persona_id", "n", "planted_persona_id", descending=[False, True, False])
        .group_by("persona_id", maintain_order=True)
        .agg(pl.col("planted_persona_id").first())
    )


def persona_f1(
    predicted: pl.DataFrame,
    planted: pl.DataFrame,
    persona_to_planted: pl.DataFrame,
    min_weight: float = 0.1,
) -> dict[str, float]:
    """Mean per-person precision, recall and F1 of planted personas recovered.

    predicted: person_id, persona_id, weight; planted: person_id, planted_persona_id,
    weight; persona_to_planted from ``map_personas_to_planted``. Both sides keep
    personas of weight >= ``min_weight``; predicted personas become planted ones via
    the mapping (two personas mapped to one planted persona count once). Averaged over
    the people who have a planted persona; a person with no prediction scores 0.
    """
    truth = (
        planted.filter(pl.col("weight") >= min_weight)
        .select("person_id", "planted_persona_id")
        .unique()
    )
    guess = (
        predicted.filter(pl.col("weight") >= min_weight)
        .join(persona_to_planted, on="persona_id")
        .select("person_id", "planted_persona_id")
        .unique()
    )
    hits = (
        truth.join(guess, on=["person_id", "planted_persona_id"])
        .group_by("person_id")
        .agg(pl.len().alias("tp"))
    )
    per_person = (
        truth.group_by("person_id")
        .agg(pl.len().alias("n_true"))
        .join(
            guess.group_by("person_id").agg(pl.len().alias("n_guess")), on="person_id", how="left"
        )
        .join(hits, on="person_id", how="left")
        .with_columns(pl.col("n_guess", "tp").fill_null(0))
        .select(
            (pl.col("tp") / pl.col("n_guess")).fill_nan(0.0).alias("precision"),
            (pl.col("tp") / pl.col("n_true")).alias("recall"),
            (2 * pl.col("tp") / (pl.col("n_true") + pl.col("n_guess"))).alias("f1"),
        )
    )
    if per_person.is_empty():
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n_users": 0}
    means = per_person.mean().row(0, named=True)
    return {**{name: float(value) for name, value in means.items()}, "n_users": per_person.height}


def label_term_precision(
    persona_terms: pl.DataFrame,
    persona_to_planted: pl.DataFrame,
    planted_terms: pl.DataFrame,
) -> float:
    """Share of all label terms that belong to their planted persona's terms and label words.

    persona_terms: persona_id, label_terms (list); planted_terms: planted_persona_id,
    terms (list) and optionally label (the planted label, "Tennis fan": its words count
    as planted words, as issue #16 asks). A label term belongs when each of its words,
    with a plural "s" dropped, is a planted word (so "rackets" matches "racket" and "pro
    staff" needs both "pro" and "staff"). Personas without a planted match count as
    misses.
    """
    if "label" in planted_terms.columns:
        planted_terms = planted_terms.with_columns(
            pl.concat_list("terms", pl.col("label").fill_null("").str.to_lowercase()).alias("terms")
        )
    planted_words = (
        planted_terms.explode("terms")
        .select("planted_persona_id", _singular_words("terms"))
        .explode("word")
        .with_columns(pl.lit(True).alias("known"))
        .unique()
    )
    label_words = (
        persona_terms.explode("label_terms")
        .drop_nulls("label_terms")
        .with_row_index("term")
        .join(persona_to_planted, on="persona_id", how="left")
        .select("term", "planted_persona_id", _singular_words("label_terms"))
        .explode("word")
        .join(planted_words, on=["planted_persona_id", "word"], how="left")
    )
    if label_words.is_empty():
        return 0.0
    return float(
        label_words.group_by("term").agg(pl.col("known").is_not_null().all())["known"].mean()
    )


def _singular_words(column: str) -> pl.Expr:
    """The column's words, each with a plural "s" dropped ("rackets" -> "racket")."""
    words = normalised(pl.col(column)).str.strip_chars().str.split(" ")
    return words.list.eval(pl.element().str.replace(r"([^s])s$", "$1")).alias("word")


def planted_persona_birth(memory_personas: pl.DataFrame, lineage: pl.DataFrame, planted: str) -> dict:
    """When the model found a persona planted mid-run: the persona id holding most of its memories on
    the last model date, that id's first lineage row (born or split_from) and date, and the share of
    the planted persona's memories that id holds then; the majority id of every model date too.

    memory_personas: event_date, persona_id, planted_persona_id, one row per memory of each date's
    window (as for `identity.id_stability`); lineage: event_date, persona_id, event. Ties go to the
    smallest id. Keys are None while the planted persona has no memory in any window.
    """
    found = {"persona_id": None, "birth_event": None, "born_on": None, "recall": None, "ids_by_day": {}}
    memories = memory_personas.filter(pl.col("planted_persona_id") == planted)
    if memories.is_empty():
        return found
    majority = (
        memories.group_by("event_date", "persona_id").len()
        .with_columns(share=pl.col("len") / pl.col("len").sum().over("event_date"))
        .sort("event_date", "len", "persona_id", descending=[False, True, False])
        .group_by("event_date", maintain_order=True).first()
    )
    last = majority.row(-1, named=True)
    first = lineage.filter(pl.col("persona_id") == last["persona_id"]).sort("event_date").head(1)
    return {
        "persona_id": last["persona_id"],
        "birth_event": first["event"].item() if first.height else None,
        "born_on": first["event_date"].item() if first.height else None,
        "recall": last["share"],
        "ids_by_day": dict(majority.select("event_date", "persona_id").iter_rows()),
    }
