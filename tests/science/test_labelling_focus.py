"""Focus phrases a marketer would write: owned by the persona, no units, broad and owned ranked first."""

import re

import polars as pl
import pytest

from dagster_project.science.labelling import (
    TermScore,
    ctfidf_table,
    focus_phrases,
    normalised,
    phrase_statistics,
)

TEXTS = pl.Series(["65 inch tv remote", "55 inch sony tv", "tv wall mount projector", "screening tonight projector",
                   "imax screening"])
PEOPLE = pl.Series(["a", "b", "c", "d", "e"])


def test_exclusivity_is_the_share_of_a_terms_documents_in_the_cluster():
    table = ctfidf_table({1: ["tv film", "film"], 2: ["tv", "news"]}, min_docs=1)
    exclusivity = {term.term: term.exclusivity for term in table[1]}
    assert exclusivity["film"] == 1.0 and exclusivity["tv"] == pytest.approx(0.5)


def test_units_and_phrases_everyone_shares_are_not_a_focus():
    evidence = TEXTS.to_list()
    # "inch" follows a number wherever it occurs (a unit); most memories with "tv" belong to other personas
    shared_tv = [TermScore("inch", 1.0, 5.0, 0.9), TermScore("tv", 1.0, 5.0, 0.3),
                 TermScore("screening", 1.0, 5.0, 0.9)]
    assert focus_phrases(shared_tv, evidence, TEXTS, PEOPLE) == ["screening"]
    owned_tv = [TermScore("inch", 1.0, 5.0, 0.9), TermScore("tv", 1.0, 5.0, 0.9),
                TermScore("screening", 1.0, 5.0, 0.9)]
    assert focus_phrases(owned_tv, evidence, TEXTS, PEOPLE) == ["screening", "tv"]
    # yesterday's phrase keeps a relaxed exclusivity bar (0.75 of it), and yesterday's focus stays whole
    held = [TermScore("tv", 1.0, 5.0, 0.4), TermScore("screening", 1.0, 5.0, 0.9)]
    assert focus_phrases(held, evidence, TEXTS, PEOPLE, previous_focus=["tv"]) == ["tv"]
    assert focus_phrases(held, evidence, TEXTS, PEOPLE) == ["screening"]


def test_phrases_are_ranked_by_coverage_times_exclusivity():
    evidence = TEXTS.to_list()
    # tv speaks for 3 of 5 people but only half its memories are the persona's (0.3); projector and
    # screening speak for 2 and are the persona's (0.36 each)
    candidates = [TermScore("tv", 1.0, 5.0, 0.5), TermScore("projector", 1.0, 5.0, 0.9),
                  TermScore("screening", 1.0, 5.0, 0.9)]
    assert focus_phrases(candidates, evidence, TEXTS, PEOPLE) == ["projector", "screening"]


def test_phrase_statistics_of_many_personas_match_one_persona_at_a_time():
    writing = pl.DataFrame({
        "persona_id": [1, 1, 1, 1, 2, 2, 2],
        "person_id": ["a", "b", "c", "c", "d", "e", "f"],
        "text": ["65 inch tv", "55 inch TV mount", "nike pegasus 41", "Nike Pegasus 41 trail", "tv news", "tv",
                 "trail run"],
    })
    evidence = writing.select("persona_id", "text")
    phrases = pl.DataFrame({"persona_id": [1, 1, 1, 2, 2], "term": ["inch", "pegasus", "trail", "tv", "inch"]})
    together = phrase_statistics(phrases, evidence, writing)
    for persona_id in (1, 2):
        alone = phrase_statistics(phrases.filter(pl.col("persona_id") == persona_id),
                                  evidence.filter(pl.col("persona_id") == persona_id),
                                  writing.filter(pl.col("persona_id") == persona_id))
        assert alone[persona_id] == together[persona_id]
    inch, pegasus, trail = (together[1][term] for term in ("inch", "pegasus", "trail"))
    assert (inch.support, inch.coverage, inch.after_number_share) == (2, pytest.approx(2 / 3), 1.0)
    assert (pegasus.coverage, pegasus.fixed_neighbour_share) == (pytest.approx(1 / 3), 1.0)  # always "nike pegasus"
    assert trail.support == 1 and trail.coverage == 0.0 and trail.after_number_share is None  # one evidence text
    assert together[2]["tv"].coverage == pytest.approx(2 / 3) and together[2]["inch"].support == 0


def test_phrase_shapes_count_as_the_regular_expression_scans_they_replace():
    # Repeats and overlaps, where a scan passes over matches: "65 inch 55 inch" finds one " <number> inch "
    # (the second needs the space the first took), "p p p" two "<word> p " of three.
    texts = ["65 inch 55 inch", "inch inch inch", "a b a b a b", "x a b y a b", "7 a b 8 a b a b", "p p p p",
             "car seat infant car seat car seat", "1 2 3 4", "la vie en rose vie en rose en"] * 2  # 2 evidence texts
    writing = pl.DataFrame({"persona_id": 1, "person_id": [f"p{i}" for i in range(len(texts))], "text": texts})
    terms = ["inch", "a b", "b a", "p", "car seat", "seat car", "2", "vie en", "en", "rose"]
    statistics = phrase_statistics(pl.DataFrame({"persona_id": 1, "term": terms}), writing.select("persona_id", "text"),
                                   writing)[1]
    haystack = normalised(writing["text"])
    for term in terms:
        escaped = re.escape(term)
        occurring = haystack.filter(haystack.str.contains(f" {term} ", literal=True))
        total = occurring.str.count_matches(f" {term} ", literal=True).sum()
        after_number = occurring.str.count_matches(r" \d[^ ]* " + escaped + " ").sum()
        neighbours = [occurring.str.extract_all(pattern).explode().drop_nulls().value_counts()["count"].max() or 0
                      for pattern in (r"\S+ " + escaped + " ", " " + escaped + r" \S+")]
        assert statistics[term].after_number_share == after_number / total, term
        assert statistics[term].fixed_neighbour_share == max(neighbours) / total, term
