"""Persona quality (DESIGN.md, all in [0, 1]) and evaluation.

Quality, per persona, needs no judge:
  cohesion, evidence_alignment, truthfulness and their mean, quality.
Evaluation against planted truth (sample data only):
  ARI/NMI of memory -> persona, per-person persona F1, label-term precision.
Downstream utility on any data:
  next-day Hit@K / Recall@K of persona-weighted popularity against baselines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def evidence_alignment(label_terms: Sequence[str], evidence_texts: Sequence[str]) -> float:
    """Share of evidence memories containing at least one label term (0 if none)."""
    if not evidence_texts or not label_terms:
        return 0.0
    texts = normalised(pl.Series(list(evidence_texts), dtype=pl.String).fill_null(""))
    needles = normalised(pl.Series(list(label_terms), dtype=pl.String)).to_list()
    return float(texts.str.contains_any(needles).mean())


def truthfulness(label: str, description: str, evidence_texts: Sequence[str]) -> float:
    """Share of the content words of label and description found in >= 2 evidence texts.

    Content words are the distinct words left after removing NON_CONTENT_WORDS. A
    label and description without a content word say nothing and score 0.
    """
    words = normalised(pl.Series([f"{label} {description}"])).str.strip_chars().str.split(" ")
    content = sorted(set(words.explode().to_list()) - NON_CONTENT_WORDS - {""})
    if not content:
        return 0.0
    return float(np.mean(term_support(content, evidence_texts) >= MIN_SUPPORT))


def quality(
    cohesion_score: float, evidence_alignment_score: float, truthfulness_score: float
) -> float:
    """Mean of the three quality measures."""
    return float(np.mean([cohesion_score, evidence_alignment_score, truthfulness_score]))


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


# --- next-day utility ----------------------------------------------------------------


def persona_recommendations(
    history: pl.DataFrame,
    memberships: pl.DataFrame,
    persons: pl.Series | None = None,
    top_objects: int = 200,
) -> pl.DataFrame:
    """Persona-weighted object popularity: score = sum_p weight(person, p) * pop(p, object).

    history: events (person_id, object_id) in the window before the day;
    memberships: person_id, persona_id, weight -- today's ``user_personas`` for the
    persona method, a fitted-once single persona per person for the static baseline.
    pop(p, o) is the membership-weighted share of p's members who touched o, kept for
    each persona's ``top_objects`` most popular objects (enough for top-50 after
    removing what a person has seen). Scores the given persons (default: all members).
    Columns person_id, object_id, score.
    """
    touched = _touched(history)
    members = memberships.select("person_id", "persona_id", "weight")
    popularity = (
        touched.join(members, on="person_id")
        .group_by("persona_id", "object_id")
        .agg(pl.col("weight").sum())
        .join(
            members.group_by("persona_id").agg(pl.col("weight").sum().alias("total")),
            on="persona_id",
        )
        .select("persona_id", "object_id", (pl.col("weight") / pl.col("total")).alias("popularity"))
        .sort("persona_id", "popularity", "object_id", descending=[False, True, False])
        .group_by("persona_id", maintain_order=True)
        .head(top_objects)
    )
    targets = (
        members
        if persons is None
        else members.join(persons.to_frame("person_id").unique(), on="person_id")
    )
    return (
        targets.join(popularity, on="persona_id")
        .group_by("person_id", "object_id")
        .agg((pl.col("weight") * pl.col("popularity")).sum().alias("score"))
    )


def popularity_recommendations(
    history: pl.DataFrame,
    persons: pl.Series,
    top_objects: int = 200,
) -> pl.DataFrame:
    """Baseline: the same most-touched objects for everyone (distinct people per object).

    Pass the last 30 days of events as ``history``. Columns person_id, object_id, score.
    """
    popular = (
        _touched(history)
        .group_by("object_id")
        .agg(pl.len().cast(pl.Float64).alias("score"))
        .sort("score", "object_id", descending=[True, False])
        .head(top_objects)
    )
    return persons.to_frame("person_id").unique().join(popular, how="cross")


def next_day_utility(
    history: pl.DataFrame,
    today: pl.DataFrame,
    scores_by_method: Mapping[str, pl.DataFrame],
    k_values: Sequence[int] = (10, 50),
) -> pl.DataFrame:
    """Hit@K and Recall@K of each method's top K on the day after ``history``.

    Evaluated people: active today, with history, and touching at least one object
    today that they had not touched before (the targets); the same people for every
    method. Each method's scores (person_id, object_id, score) are ranked per person
    after removing objects the person already touched (ties by object_id). hit_rate:
    share of people with a target in their top K; recall: mean share of their targets
    in their top K. Columns method, k, hit_rate, recall, n_users.
    """
    seen = _touched(history)
    targets = _touched(today).join(seen, on=["person_id", "object_id"], how="anti")
    people = (
        targets.group_by("person_id")
        .agg(pl.len().alias("n_targets"))
        .join(seen.select("person_id").unique(), on="person_id")
    )
    scores = pl.concat(
        [
            frame.select("person_id", "object_id", pl.col("score").cast(pl.Float64)).with_columns(
                pl.lit(method).alias("method")
            )
            for method, frame in scores_by_method.items()
        ],
        how="vertical",
    )
    ranked = (
        scores.join(people.select("person_id"), on="person_id")
        .join(seen, on=["person_id", "object_id"], how="anti")
        .sort("method", "person_id", "score", "object_id", descending=[False, False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("method", "person_id").alias("rank"))
        .filter(pl.col("rank") <= max(k_values))
        .join(targets, on=["person_id", "object_id"])
    )
    grid = pl.DataFrame({"method": list(scores_by_method)}).join(
        pl.DataFrame({"k": list(k_values)}, schema={"k": pl.Int64}), how="cross"
    )
    hits = (
        ranked.join(grid, on="method")
        .filter(pl.col("rank") <= pl.col("k"))
        .group_by("method", "k", "person_id")
        .agg(pl.len().alias("hits"))
    )
    per_person = (
        grid.join(people, how="cross")
        .join(hits, on=["method", "k", "person_id"], how="left")
        .with_columns(pl.col("hits").fill_null(0))
    )
    summary = per_person.group_by("method", "k").agg(
        (pl.col("hits") > 0).mean().alias("hit_rate"),
        (pl.col("hits") / pl.col("n_targets")).mean().alias("recall"),
    )
    return (
        grid.join(summary, on=["method", "k"], how="left", maintain_order="left")
        .with_columns(pl.col("hit_rate", "recall").fill_null(0.0))
        .with_columns(pl.lit(people.height, dtype=pl.Int64).alias("n_users"))
    )


def _touched(events: pl.DataFrame) -> pl.DataFrame:
    """Distinct (person_id, object_id) pairs of events that carry an object."""
    return (
        events.filter(pl.col("object_id").is_not_null()).select("person_id", "object_id").unique()
    )
