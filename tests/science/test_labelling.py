import numpy as np
import polars as pl
import pytest

from dagster_project.science.labelling import (
    ctfidf_from_presence,
    ctfidf_table,
    ctfidf_terms,
    explanation_text,
    held_out_memories,
    normalised,
    person_personas,
    persona_explanations,
    term_presence,
)


def test_normalised_texts_match_phrases_as_whole_words_case_and_punctuation_insensitively():
    texts = normalised(pl.Series(["Wilson Pro-Staff racket", "pro staff TENNIS", "prostaff", "rackets"]))
    phrases = normalised(pl.Series(["pro staff", "racket", "tennis"])).to_list()
    assert [texts.str.contains(phrase, literal=True).sum() for phrase in phrases] == [2, 1, 1]


def test_ctfidf_ranks_distinctive_terms_and_needs_two_documents():
    terms = ctfidf_terms(
        {
            "tennis": [
                "tennis racket",
                "tennis wimbledon",
                "racket strings",
                "great deal",
                "pasta",
            ],
            "cooking": ["pasta skillet", "pasta recipe", "skillet oven", "great deal"],
        },
        top_n=3,
    )
    assert terms["tennis"] == ["racket", "tennis"]  # wimbledon, strings and pasta occur once
    assert terms["cooking"][:2] == ["skillet", "pasta"]  # pasta also occurs among tennis
    assert "great" not in terms["tennis"] + terms["cooking"][:2]


def test_held_out_memories_are_a_seeded_sample_of_members_outside_the_evidence():
    assignments = pl.DataFrame({
        "memory_id": [f"m{i:03d}" for i in range(120)],
        "persona_id": [1] * 100 + [2] * 20,
    })
    evidence = pl.DataFrame({"persona_id": [1, 2], "evidence_memory_ids": [["m000", "m001"], ["m100"]]})
    held_out = held_out_memories(assignments, evidence, n=30, seed=3)
    sizes = dict(held_out.group_by("persona_id").len().iter_rows())
    assert sizes == {1: 30, 2: 19}  # 30 of 98 others; all 19 others of the small persona
    assert not set(held_out["memory_id"]) & {"m000", "m001", "m100"}
    assert held_out.equals(held_out_memories(assignments, evidence, n=30, seed=3))
    assert not held_out.equals(held_out_memories(assignments, evidence, n=30, seed=4))
    halves = dict(held_out_memories(assignments, evidence, n=10, seed=3, share=0.5).group_by("persona_id").len().iter_rows())
    assert halves == {1: 49, 2: 10}  # half of 98 others; n where half is fewer




def persona_assignments():
    rows = (
        [
            ("p1", 1, 0.1, f"a{i}", "tennis racket wimbledon" if i < 2 else "tennis racket")
            for i in range(6)
        ]
        + [("p1", 2, 0.1, f"b{i}", "pasta skillet") for i in range(3)]
        + [("p1", 3, 0.05, "c0", "garden hose")]
        + [("p2", 2, 0.2, "d0", "pasta oven"), ("p2", 1, 0.0, "d1", "tennis")]
    )
    frame = pl.DataFrame(
        rows, schema=["person_id", "persona_id", "weight", "memory_id", "text"], orient="row"
    )
    return frame.with_columns(distance=pl.int_range(pl.len(), 0, -1).cast(pl.Float64) / 100)


PERSONAS = pl.DataFrame(
    {
        "persona_id": [1, 2, 3],
        "label": ["Tennis buyer focused on racket", "Cooking enthusiast focused on pasta and skillet", "Garden fan"],
        "top_terms": [
            ["tennis", "racket", "tennis racket", "wimbledon"],
            ["pasta", "skillet", "oven"],
            ["garden"],
        ],
    }
)


def test_person_personas_weights_labels_and_evidence():
    result = person_personas(persona_assignments(), PERSONAS, n_evidence=2)
    p1 = result.filter(pl.col("person_id") == "p1")
    # shares 0.6/0.95, 0.3/0.95, 0.05/0.95: the last is below 0.1, the rest renormalised
    assert p1["persona_id"].to_list() == [1, 2]
    np.testing.assert_allclose(p1["weight"].to_numpy(), [2 / 3, 1 / 3])
    assert p1["label"].to_list() == ["Tennis buyer focused on wimbledon", "Cooking enthusiast focused on pasta and skillet"]
    assert p1["top_terms"][0].to_list() == ["tennis", "racket", "tennis racket", "wimbledon"]
    assert p1["evidence_memory_ids"][0].to_list() == ["a5", "a4"]  # closest first
    # p2's tennis memory is outside the window (weight 0)
    p2 = result.filter(pl.col("person_id") == "p2")
    assert p2["persona_id"].to_list() == [2] and p2["weight"].to_list() == [1.0]
    assert p2["label"].to_list() == ["Cooking enthusiast focused on oven"]


def test_person_personas_keep_at_most_five_and_always_the_largest():
    rows = [("p", persona, 1.0, f"m{persona}", "x") for persona in range(12)]
    assignments = pl.DataFrame(
        rows, schema=["person_id", "persona_id", "weight", "memory_id", "text"], orient="row"
    ).with_columns(distance=pl.lit(0.1))
    personas = pl.DataFrame(
        {"persona_id": list(range(12)), "label": ["x"] * 12, "top_terms": [["y"]] * 12}
    )
    result = person_personas(assignments, personas)
    # every share is 1/12 < 0.1: only the largest (ties: smallest id) stays
    assert result["persona_id"].to_list() == [0] and result["weight"].to_list() == [1.0]
    assert result["label"].to_list() == ["x"]
    result = person_personas(assignments.head(7), personas)
    assert result.height == 5 and result["weight"].sum() == 1.0


def test_explanations_give_term_weights_and_the_source_mix_against_everyone():
    docs = {1: ["tennis racket", "tennis court", "racket strings"], 2: ["pasta recipe", "pasta sauce", "bread"]}
    weights = {cluster: [(term.term, term.weight) for term in terms] for cluster, terms in ctfidf_table(docs).items()}
    assert [term for term, _ in weights[1]] == ctfidf_terms(docs)[1]
    assert all(weight > 0 for _, weight in weights[1])
    memories = pl.DataFrame({
        "memory_id": ["a", "b", "c", "d"],
        "persona_id": [1, 1, 2, 2],
        "sources": [["web", "iot"], ["iot"], ["web"], ["web", "social"]],
        "weight": [1.0, 1.0, 1.0, 1.0],
    })
    explanation = dict(persona_explanations(memories, weights).iter_rows())[1]
    assert explanation["terms"][0] == {"term": weights[1][0][0], "weight": weights[1][0][1]}
    iot = next(source for source in explanation["sources"] if source["source"] == "iot")
    assert (iot["persona_share"], iot["population_share"]) == (1.0, 0.5)
    assert explanation_text(explanation).startswith(f"terms {weights[1][0][0]} ")
    assert "; sources iot 100% (all 50%)" in explanation_text(explanation)


def test_ctfidf_from_a_window_s_presence_equals_counting_the_clusters_own_documents():
    # The parents reuse the personas' counts: rows of other clusters only widen the vocabulary.
    docs = {"a": ["tennis racket", "tennis court", "racket strings"], "b": ["pasta recipe", "pasta sauce", "bread"]}
    window = [*docs["a"], "yoga mat", *docs["b"], "yoga class"]
    presence, vocabulary = term_presence(window)
    rows = np.array([0, 1, 2, 4, 5, 6])
    from_window = ctfidf_from_presence(presence[rows], vocabulary, np.array([0, 0, 0, 1, 1, 1]), ["a", "b"], min_docs=1)
    assert from_window == ctfidf_table(docs, min_docs=1)
    assert "yoga" in vocabulary and all(term.term != "yoga" for terms in from_window.values() for term in terms)


def test_a_share_of_exactly_min_share_is_kept_whatever_the_float_rounding():
    # 1 of 10 equal weights of 0.03 sums to 0.0999...; the share must still meet the 10% bar on every run.
    assignments = pl.DataFrame({
        "memory_id": [f"m{index}" for index in range(10)], "person_id": ["p"] * 10, "persona_id": [1] * 9 + [2],
        "weight": [0.03] * 10, "distance": [0.1] * 10, "text": ["x"] * 10,
    })
    personas = pl.DataFrame({"persona_id": [1, 2], "label": ["a", "b"], "top_terms": [["x"], ["x"]]})
    result = person_personas(assignments, personas)
    assert result["persona_id"].to_list() == [1, 2]
    assert result["weight"].to_list() == [pytest.approx(0.9), pytest.approx(0.1)]
