"""Persona quality (DESIGN.md, all in [0, 1]) and evaluation.

Quality, per persona, needs no judge: cohesion, and on member memories the label was
not written from, evidence_alignment, truthfulness and coverage; quality is their mean.
Evaluation against planted truth (sample data only):
  ARI/NMI of memory -> persona, per-person persona F1, label-term precision.
Next-day utility (rankers and Hit@K / Recall@K) lives in science/recommenders.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dagster_project.science.labelling import MIN_SUPPORT, TEMPLATE_WORDS, normalised, term_support

# Not counted as content words by truthfulness: scikit-learn's English stop words
# ("and", "in", "on", "who", ...) and the words the label/description templates add
# (labelling.TEMPLATE_WORDS: people, interested, seen, recurring, theme, unlabelled,
# web, social, crm, iot).
NON_CONTENT_WORDS = frozenset(ENGLISH_STOP_WORDS) | TEMPLATE_WORDS


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


def evidence_alignment(label_terms: Sequence[str], texts: Sequence[str]) -> float:
    """Share of ``texts`` containing at least one label term (0 if none).

    Scored on held-out member memories (``labelling.held_out_memories``), not on the
    evidence the label was written from, where it would be 1 by construction.
    """
    if not len(texts) or not label_terms:
        return 0.0
    return float(contains_label_term(pl.Series(list(texts), dtype=pl.String), label_terms).mean())


def truthfulness(label: str, description: str, texts: Sequence[str], min_share: float = 0.0) -> float:
    """Share of the content words of label and description found in enough ``texts``.

    A word counts when it occurs in at least ``MIN_SUPPORT`` texts and in at least
    ``min_share`` of them: on held-out memories, the share the label demanded of its
    evidence (``MIN_SUPPORT / n_evidence``). Content words are the distinct words left
    after removing NON_CONTENT_WORDS. A label and description without a content word
    say nothing and score 0.
    """
    words = normalised(pl.Series([f"{label} {description}"])).str.strip_chars().str.split(" ")
    content = sorted(set(words.explode().to_list()) - NON_CONTENT_WORDS - {""})
    if not content:
        return 0.0
    needed = max(MIN_SUPPORT, min_share * len(texts))
    return float(np.mean(term_support(content, texts) >= needed))


def coverage(label_terms: Sequence[str], texts: pl.Series, person_ids: pl.Series) -> float:
    """Share of a persona's people with at least one member memory that contains a label term.

    ``texts`` and ``person_ids``: one row per member memory. 0 without members or terms.
    """
    if texts.is_empty() or not label_terms:
        return 0.0
    hits = pl.DataFrame({"person_id": person_ids, "hit": contains_label_term(texts, label_terms)})
    return float(hits.group_by("person_id").agg(pl.col("hit").any())["hit"].mean())


def contains_label_term(texts: pl.Series, label_terms: Sequence[str]) -> pl.Series:
    """Per text: does a label term occur in it (as whole words, see ``labelling``)."""
    needles = normalised(pl.Series(list(label_terms), dtype=pl.String)).to_list()
    return normalised(texts.fill_null("")).str.contains_any(needles)


def quality(*scores: float) -> float:
    """Mean of the quality measures (cohesion, held-out alignment and truthfulness, coverage)."""
    return float(np.mean(scores))


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
    """Share of all label terms that belong to their planted persona's term list.

    persona_terms: persona_id, label_terms (list); planted_terms: planted_persona_id,
    terms (list). A label term belongs when each of its words, with a plural "s"
    dropped, is a word of the planted terms (so "rackets" matches "racket" and "pro
    staff" needs both "pro" and "staff"). Personas without a planted match count as
    misses.
    """
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
