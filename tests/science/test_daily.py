from datetime import date

import polars as pl
import pytest

from dagster_project.science.daily import PersonaSettings, _return_clusters, fit_day, memories_for_day
from dagster_project.science.labelling import PersonaLabel, check_label_grounded, held_out_memories
from dagster_project.science.metrics import evidence_alignment


def test_fit_day_scores_labels_on_held_out_members_not_on_their_evidence(two_persona_events):
    window = pl.concat([memories_for_day(day) for day in two_persona_events.partition_by("event_date")])
    settings = PersonaSettings(n_held_out=30)
    fit = fit_day(window, window["event_date"].max(), None, 1, settings)
    members = fit.assignments.join(window.select("memory_id", "text", "sources", "categories"), on="memory_id")
    held_out = held_out_memories(
        members.select("memory_id", "persona_id", "text", "categories"),
        fit.personas.select("persona_id", "evidence_memory_ids"), 30, settings.seed, share=0.5,
    )
    assert fit.personas.height == 2
    for row in fit.personas.iter_rows(named=True):
        sample = held_out.filter(pl.col("persona_id") == row["persona_id"])
        assert sample.height >= 30 and not set(sample["memory_id"]) & set(row["evidence_memory_ids"])
        assert row["evidence_alignment"] == evidence_alignment(sample, row["domain_categories"], row["focus"])
        scores = [row["cohesion"], row["evidence_alignment"], row["truthfulness"], row["coverage"]]
        assert row["quality"] == pytest.approx(sum(scores) / 4)
        assert min(scores[1:]) > 0.5
        evidence = members.filter(pl.col("memory_id").is_in(row["evidence_memory_ids"]))
        label = PersonaLabel(row["label"], row["description"], row["label_terms"], row["role"], row["domain"],
                             row["domain_categories"], row["focus"])
        check_label_grounded(label, evidence["text"].to_list(), evidence["categories"].to_list())
    assert {"mean_coverage", "mean_truthfulness", "mean_evidence_alignment"} <= set(fit.metrics)


def test_a_persona_returns_only_where_its_memories_went_and_nowhere_without_clusters():
    history = pl.DataFrame({
        "event_date": [date(2026, 10, 1)] * 3 + [date(2026, 9, 30)],
        "memory_id": ["m1", "m2", "m3", "m0"],
        "persona_id": [3, 3, 3, 3],
    })
    today = pl.DataFrame({"memory_id": ["m1", "m2", "m3", "m0"], "cluster": [0, 0, 1, 2]})
    assert _return_clusters(history, today, 2) == {3: frozenset({0})}  # m0 is of an older day
    assert _return_clusters(history, today, 3) == {3: frozenset({0, 1})}
    no_clusters = pl.DataFrame(schema={"memory_id": pl.String, "cluster": pl.Int64})
    assert _return_clusters(history, no_clusters, 0) == {}  # a day without parent personas
