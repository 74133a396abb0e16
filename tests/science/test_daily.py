import polars as pl
import pytest

from dagster_project.science.daily import PersonaSettings, fit_day, memories_for_day
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
