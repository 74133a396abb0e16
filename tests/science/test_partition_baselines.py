"""Memory truth with noise events, and the trivial partitions, on hand-made memories."""

from datetime import datetime, timedelta

import polars as pl
import pytest

from dagster_project.science.partition_baselines import memory_truth, partition_baselines


def test_memory_truth_is_the_majority_persona_and_noise_lowers_purity():
    records = pl.DataFrame({"record_id": ["e1", "e2", "e3", "e4", "e5", "e6"],
                            "persona": ["runner", "runner", None, "tennis", None, None]})
    memory_events = pl.DataFrame({"memory_id": ["m1"] * 4 + ["m2", "m3"], "record_id": ["e1", "e2", "e3", "e4", "e5", "e6"]})
    truth = memory_truth(records, memory_events).sort("memory_id")
    # m1: runner 2 of 4 events (one noise, one tennis); m2 and m3 are all noise: no truth
    assert truth.rows() == [("m1", "runner", 0.5)]


def test_partition_baselines_score_category_and_family_partitions_on_the_same_memories():
    start = datetime(2026, 10, 1, 9)
    rows = []  # memory, category, planted persona; one person per memory, one session each
    for index in range(12):
        persona = "runner" if index < 6 else "cook"
        # runners alternate shoes / running_watch (one family); cooks use pans only
        category = ("shoes" if index % 2 else "running_watch") if persona == "runner" else "pans"
        rows += [(f"m{index}", f"p{index}", f"e{index}_{n}", start + timedelta(minutes=n), category, persona)
                 for n in range(3)]
    # three more sessions (noise, outside every memory) mix shoes and watches: one family holds both
    rows += [(f"x{person}", f"px{person}", f"x{person}_{n}", start + timedelta(minutes=n), category, None)
             for person in range(3) for n, category in enumerate(["shoes", "running_watch"])]
    # and twenty single-category sessions, so shoes and watches meet well above chance (lift >= 2)
    rows += [(f"y{person}", f"py{person}", f"y{person}", start, "pans", None) for person in range(20)]
    frame = pl.DataFrame(rows, schema=["memory_id", "person_id", "record_id", "ts", "category", "persona"], orient="row")
    memory_events = frame.filter(pl.col("persona").is_not_null()).select("memory_id", "record_id")
    truth = memory_truth(frame.select("record_id", "persona"), memory_events)
    events = frame.select(event_id="record_id", person_id="person_id", ts="ts", object_id=pl.lit(None, pl.String),
                          category="category")
    scores = partition_baselines(memory_events, events, truth.select("memory_id", "planted_persona_id"))
    assert scores["by_category"]["n_clusters"] == 3 and scores["by_category"]["ari"] < 1.0
    assert scores["intent_families"] == {"ari": pytest.approx(1.0), "nmi": pytest.approx(1.0), "n_clusters": 2}


def test_by_category_takes_an_uncategorised_event_s_object_category_and_lumps_only_what_has_none():
    start = datetime(2026, 10, 1, 9)
    # memory, record, object, category, planted persona
    rows = [
        ("m1", "e1", "shoe1", "shoes", "runner"), ("m1", "e2", "shoe1", "shoes", "runner"),
        ("m2", "e3", "shoe1", None, "runner"), ("m2", "e4", None, None, "runner"),  # a like of shoe1 and a search
        ("m3", "e5", "pan1", None, "cook"),  # pan1's category is only named by an event outside every memory
        ("m4", "e6", None, None, "cook"), ("m5", "e7", "post1", None, "cook"),  # a ticket, an uncategorised post
    ]
    frame = pl.DataFrame(rows, schema=["memory_id", "record_id", "object_id", "category", "persona"], orient="row")
    memory_events = frame.select("memory_id", "record_id")
    truth = memory_truth(frame.select("record_id", "persona"), memory_events)
    events = frame.select(event_id="record_id", person_id=pl.col("memory_id"), ts=pl.lit(start), object_id="object_id",
                          category="category")
    object_events = pl.DataFrame({"object_id": ["shoe1", "pan1", "pan1", "pan1"],
                                  "category": ["shoes", "pans", "pans", "lids"]})
    scores = partition_baselines(memory_events, events, truth, object_events)
    # shoes {m1, m2}, pans {m3}, uncategorised {m4, m5}
    assert scores["by_category"]["n_clusters"] == 3
    assert scores["by_category"]["ari"] == pytest.approx(
        partition_baselines(memory_events, events.with_columns(
            category=pl.Series(["shoes", "shoes", "shoes", None, "pans", None, None])), truth)["by_category"]["ari"])
    without_objects = partition_baselines(memory_events, events.with_columns(object_id=pl.lit(None, pl.String)), truth)
    assert without_objects["by_category"]["n_clusters"] == 2  # shoes {m1}, everything else lumped together
    assert without_objects["by_category"]["ari"] < scores["by_category"]["ari"]
