import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from dagster_project.science.labelling import CLAIM_DTYPE
from dagster_project.science.metrics import (
    clustering_agreement,
    cohesion,
    coverage,
    coverages,
    evidence_alignment,
    evidence_alignments,
    label_term_precision,
    map_personas_to_planted,
    persona_f1,
    quality,
    truthfulness,
    truthfulnesses,
)


def test_cohesion_is_the_weighted_mean_similarity_clipped_to_unit_range():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    centroids = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scores = cohesion(X, np.array([0, 0, 0, 1]), centroids, np.array([1.0, 1.0, 2.0, 1.0]))
    np.testing.assert_allclose(scores, [0.5, 0.0, 0.0])  # (1+1+0)/4; -1 clipped; no members


MEMBERS = pl.DataFrame({
    "person_id": ["ann", "ann", "bob", "cy", "dee"],
    "text": ["tennis racket", "pasta", "gift card", "Wilson Pro-Staff 97", "staff meeting"],
    "categories": [["books"], ["cookware"], ["tennis_tickets"], [], []],
})


def test_evidence_alignment_counts_memories_of_the_domain_or_with_a_focus_phrase():
    # tennis_tickets (domain) and "pro staff" (focus): memories 3 and 4; "tennis" is no focus here
    assert evidence_alignment(MEMBERS, ["tennis_rackets", "tennis_tickets"], ["pro staff"]) == pytest.approx(2 / 5)
    assert evidence_alignment(MEMBERS, ["tennis_tickets"], []) == pytest.approx(1 / 5)
    assert evidence_alignment(MEMBERS, [], []) == 0.0


def test_coverage_counts_people_with_a_memory_that_supports_the_label():
    assert coverage(MEMBERS, ["tennis_tickets"], ["tennis"]) == 0.5  # ann and bob of four people
    assert coverage(MEMBERS, [], []) == 0.0


def test_truthfulness_checks_each_claimed_share_within_five_points():
    held_out = pl.DataFrame({
        "categories": [["tennis_rackets"], ["tennis_tickets"], ["books"], []] * 5,
        "actions": [["order"], ["page_view"], ["page_view"], ["page_view"]] * 5,
        "sources": [["web"]] * 20,
    })
    claims = [
        {"text": "50% of its memories involve tennis", "statistic": "category:tennis_rackets|tennis_tickets",
         "value": 0.54},  # 50% on held-out: within 5 points
        {"text": "31% include an order", "statistic": "action:order", "value": 0.31},  # 25%: 6 points off
        {"text": "100% are on web", "statistic": "source:web", "value": 1.0},
    ]
    assert truthfulness(claims, held_out) == pytest.approx(2 / 3)
    assert truthfulness(claims, held_out, tolerance=0.1) == 1.0
    assert truthfulness([], held_out) == 0.0 and truthfulness(claims, held_out.clear()) == 0.0


def test_scores_of_all_personas_at_once_equal_each_persona_scored_alone():
    # Persona 1 (tennis) and 2 (gifts) share one frame; 3 has no label, 4 no memories.
    memories = pl.concat([
        MEMBERS.with_columns(persona_id=pl.lit(1)),
        MEMBERS.with_columns(persona_id=pl.lit(2), person_id=pl.col("person_id") + "2"),
        MEMBERS.head(2).with_columns(persona_id=pl.lit(3)),
    ]).with_columns(actions=pl.lit(["order"]), sources=pl.col("categories").list.eval(pl.lit("web")))
    claims = [{"text": "40% ...", "statistic": "category:tennis_tickets|books", "value": 0.4},
              {"text": "100% ...", "statistic": "action:order", "value": 1.0},
              {"text": "80% ...", "statistic": "source:web", "value": 0.8}]
    labels = pl.DataFrame(
        {"persona_id": [1, 2, 3, 4],
         "domain_categories": [["tennis_tickets"], ["books", "cookware"], [], ["books"]],
         "focus": [["pro staff"], ["gift card", "tennis"], [], ["pasta"]],
         "claims": [claims, claims[1:], [], claims]},
        schema={"persona_id": pl.Int64, "domain_categories": pl.List(pl.String), "focus": pl.List(pl.String),
                "claims": CLAIM_DTYPE},
    )
    together = (evidence_alignments(memories, labels)
                .join(coverages(memories, labels), on="persona_id", maintain_order="left")
                .join(truthfulnesses(memories, labels), on="persona_id", maintain_order="left"))
    alone = [
        (label["persona_id"],
         evidence_alignment(rows, label["domain_categories"], label["focus"]),
         coverage(rows, label["domain_categories"], label["focus"]),
         truthfulness(label["claims"], rows))
        for label in labels.iter_rows(named=True)
        for rows in [memories.filter(pl.col("persona_id") == label["persona_id"])]
    ]
    assert together.rows() == alone
    # 3 of 5 memories are on web: that claim fails for both; persona 2 covers ann and bob, not cy and dee
    assert alone[:2] == [(1, 2 / 5, 2 / 4, 2 / 3), (2, 3 / 5, 2 / 4, 1 / 2)]
    assert alone[2:] == [(3, 0.0, 0.0, 0.0), (4, 0.0, 0.0, 0.0)]


def test_quality_of_all_personas_at_once_sums_as_one_at_a_time():
    scores = [np.random.default_rng(seed).random(50) for seed in range(4)]
    assert quality(*scores).tolist() == [quality(*persona) for persona in zip(*scores, strict=True)]


def test_quality_is_the_mean_of_the_measures():
    assert quality(0.9, 0.6, 0.3) == pytest.approx(0.6)
    assert quality(0.9, 0.6, 0.3, 1.0) == pytest.approx(0.7)


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
    # the planted label's words count too: "Home cook" makes nothing of "skillet", "Pasta lover" of "pasta"
    labelled = planted_terms.with_columns(label=pl.Series(["Pasta lover", "Home cook"]))
    assert label_term_precision(persona_terms, mapping, labelled) == pytest.approx(3 / 5)
