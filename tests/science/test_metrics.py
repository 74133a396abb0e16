import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from dagster_project.science.metrics import (
    clustering_agreement,
    cohesion,
    evidence_alignment,
    label_term_precision,
    map_personas_to_planted,
    next_day_utility,
    persona_f1,
    persona_recommendations,
    popularity_recommendations,
    quality,
    truthfulness,
)


def test_cohesion_is_the_weighted_mean_similarity_clipped_to_unit_range():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    centroids = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scores = cohesion(X, np.array([0, 0, 0, 1]), centroids, np.array([1.0, 1.0, 2.0, 1.0]))
    np.testing.assert_allclose(scores, [0.5, 0.0, 0.0])  # (1+1+0)/4; -1 clipped; no members


def test_evidence_alignment_counts_memories_with_a_label_term():
    evidence = ["tennis racket", "Wilson Pro-Staff 97", "pasta", "staff meeting"]
    assert evidence_alignment(["tennis", "pro staff"], evidence) == 0.5
    assert evidence_alignment([], evidence) == 0.0


EVIDENCE = ["tennis racket wimbledon", "Tennis racket final", "pasta"]


def test_truthfulness_is_one_when_every_content_word_is_in_two_evidence_memories():
    description = "People interested in tennis and racket; seen on web and social."
    assert truthfulness("tennis · racket", description, EVIDENCE) == 1.0


def test_truthfulness_drops_for_words_the_evidence_does_not_repeat():
    # content words: tennis, racket (twice each), wimbledon (once), clay (never)
    description = "People interested in tennis, wimbledon and clay; seen on web."
    assert truthfulness("tennis · racket", description, EVIDENCE) == 0.5
    assert truthfulness("unlabelled", "People with no recurring theme.", EVIDENCE) == 0.0


def test_quality_is_the_mean_of_the_three_measures():
    assert quality(0.9, 0.6, 0.3) == pytest.approx(0.6)


def test_clustering_agreement_ignores_label_names():
    planted = ["a", "a", "b", "b", "c", "c"]
    assert clustering_agreement([5, 5, 3, 3, 9, 9], planted) == {"ari": 1.0, "nmi": 1.0}
    assert clustering_agreement([1, 2, 1, 2, 1, 2], planted)["ari"] < 0


def test_personas_map_to_their_majority_planted_persona():
    memories = pl.DataFrame(
        {
            "persona_id": [10, 10, 10, 11, 11, 11, 12, 12],
            "planted_persona_id": ["A", "A", "B", "B", "B", "A", "C", "A"],
        }
    )
    mapping = map_personas_to_planted(memories).sort("persona_id")
    assert mapping.rows() == [(10, "A"), (11, "B"), (12, "A")]  # 12: tie -> smallest id


def test_persona_f1_on_a_hand_made_case():
    planted = pl.DataFrame(
        {
            "person_id": ["p1", "p1", "p2", "p2", "p3"],
            "planted_persona_id": ["A", "B", "A", "C", "B"],
            "weight": [0.6, 0.4, 0.95, 0.05, 1.0],
        }
    )
    predicted = pl.DataFrame(
        {
            "person_id": ["p1", "p1", "p2", "p2"],
            "persona_id": [10, 11, 10, 12],
            "weight": [0.5, 0.5, 0.7, 0.3],
        }
    )
    mapping = pl.DataFrame({"persona_id": [10, 11, 12], "planted_persona_id": ["A", "B", "C"]})
    scores = persona_f1(predicted, planted, mapping)
    # p1 perfect; p2 guesses {A, C} for {A} (C's planted weight < 0.1); p3 has no guess
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert scores["precision"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert scores["recall"] == pytest.approx((1 + 1 + 0) / 3)
    assert scores["n_users"] == 3


def test_label_term_precision_matches_words_and_plurals():
    persona_terms = pl.DataFrame(
        {
            "persona_id": [10, 11, 13],
            "label_terms": [["rackets", "pro staff", "pasta"], ["skillet"], ["anything"]],
        }
    )
    mapping = pl.DataFrame({"persona_id": [10, 11], "planted_persona_id": ["A", "B"]})
    planted_terms = pl.DataFrame(
        {"planted_persona_id": ["A", "B"], "terms": [["racket", "pro", "tennis staff"], ["oven"]]}
    )
    # hits: rackets, pro staff; misses: pasta, skillet, anything (persona 13 is unmapped)
    assert label_term_precision(persona_terms, mapping, planted_terms) == pytest.approx(2 / 5)


def planted_utility_case():
    """10 people like objects a0..a4, 30 people like b0..b19; tomorrow each person
    touches the one object of their group they have not touched yet."""
    history, today, memberships = [], [], []
    for person in range(40):
        group, objects = ("a", 5) if person < 10 else ("b", 20)
        person_id = f"u{person:02d}"
        missing = f"{group}{person % objects}"
        history += [(person_id, f"{group}{o}") for o in range(objects) if f"{group}{o}" != missing]
        today.append((person_id, missing))
        memberships.append((person_id, group, 1.0))
    history.append(("u00", None))  # a search: no object
    today.append(("u99", "a0"))  # no history: not evaluated
    return (
        pl.DataFrame(history, schema=["person_id", "object_id"], orient="row"),
        pl.DataFrame(today, schema=["person_id", "object_id"], orient="row"),
        pl.DataFrame(memberships, schema=["person_id", "persona_id", "weight"], orient="row"),
    )


def test_personas_beat_popularity_on_a_planted_next_day():
    history, today, memberships = planted_utility_case()
    persons = today["person_id"]
    result = next_day_utility(
        history,
        today,
        {
            "personas": persona_recommendations(history, memberships, persons),
            "popularity": popularity_recommendations(history, persons),
        },
    )
    by_method = {(row["method"], row["k"]): row for row in result.iter_rows(named=True)}
    assert result["n_users"].unique().to_list() == [40]
    assert by_method["personas", 10]["hit_rate"] == 1.0
    assert by_method["personas", 10]["recall"] == 1.0
    # popularity's top 10 is all b objects: the 10 "a" people miss until K reaches them
    assert by_method["popularity", 10]["hit_rate"] == pytest.approx(30 / 40)
    assert by_method["popularity", 50]["hit_rate"] == 1.0


def test_next_day_utility_counts_recall_per_person_and_excludes_seen_objects():
    history = pl.DataFrame({"person_id": ["u1", "u1"], "object_id": ["x", "y"]})
    today = pl.DataFrame({"person_id": ["u1", "u1", "u1"], "object_id": ["x", "z", "w"]})
    scores = pl.DataFrame(
        {"person_id": ["u1"] * 3, "object_id": ["x", "z", "v"], "score": [9.0, 5.0, 7.0]}
    )
    row = next_day_utility(history, today, {"m": scores}, k_values=(1, 2)).sort("k").to_dicts()
    # x is seen and dropped: ranking v, z; targets are z and w (x was seen)
    assert [(r["k"], r["hit_rate"], r["recall"]) for r in row] == [(1, 0.0, 0.0), (2, 1.0, 0.5)]
