"""The KPI computations on small frames whose answers are worked out by hand."""

import datetime as dt

import polars as pl
import pytest

from dagster_project.science.kpis import (
    KpiThresholds,
    business_alignment,
    channel_personas,
    cross_channel_consistency,
    kpi_rows,
    percentiles,
    update_latencies,
)

MEMORIES = pl.DataFrame({
    "person_id": ["a", "a", "a", "a", "b", "b", "c"],
    "sources": [["web"], ["web"], ["social", "web"], ["iot"], ["web"], ["crm"], ["web"]],
    "persona_id": [1, 1, 2, 2, 3, 4, 1],
})
USER_PERSONAS = pl.DataFrame({
    "person_id": ["a", "a", "b", "b", "c"], "persona_id": [1, 2, 4, 3, 1], "weight": [0.6, 0.4, 0.7, 0.3, 1.0],
})


def test_a_channel_speaks_for_its_majority_persona_and_a_tie_goes_to_the_lowest_id():
    channels = {(row["person_id"], row["source"]): row["channel_persona_id"]
                for row in channel_personas(MEMORIES).iter_rows(named=True)}
    # a's web memories: personas 1, 1, 2 -> 1; social only in the shared memory -> 2; iot -> 2
    assert channels[("a", "web")] == 1 and channels[("a", "social")] == 2 and channels[("a", "iot")] == 2
    tie = pl.DataFrame({"person_id": ["d", "d"], "sources": [["web"], ["web"]], "persona_id": [9, 5]})
    assert channel_personas(tie)["channel_persona_id"].to_list() == [5]


def test_consistency_averages_people_on_two_channels_or_more_only():
    consistency = cross_channel_consistency(MEMORIES, USER_PERSONAS)
    # a (top 1): web agrees, social and iot do not -> 1/3; b (top 4): crm agrees, web not -> 1/2; c: one channel, left out
    assert consistency.people == 2
    assert consistency.value == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert consistency.by_source == pytest.approx({"crm": 1.0, "iot": 0.0, "social": 0.0, "web": 0.5})


def test_consistency_is_undefined_without_multichannel_people():
    single = MEMORIES.filter(pl.col("person_id") == "c")
    assert cross_channel_consistency(single, USER_PERSONAS).value is None


def test_alignment_is_the_hit_rate_lift_at_ten_over_the_ablation_and_popularity():
    utility = pl.DataFrame({
        "method": ["personas", "personas_without_persona_term", "popularity", "personas"],
        "k": [10, 10, 10, 50], "hit_rate": [0.6, 0.55, 0.4, 0.9],
    })
    assert business_alignment(utility) == pytest.approx({"lift_over_ablation": 0.05, "lift_over_popularity": 0.2})
    assert business_alignment(utility.filter(pl.col("method") != "popularity"))["lift_over_popularity"] is None


def test_latency_runs_from_landing_and_from_the_event_to_visibility():
    events = pl.DataFrame({
        "landing_file": ["w.jsonl", "w.jsonl", "c.csv", "gone.csv"],
        "ts": [dt.datetime(2026, 10, 1, 10), dt.datetime(2026, 10, 1, 11), dt.datetime(2026, 10, 1, 12),
               dt.datetime(2026, 10, 1, 12)],
    })
    landed = pl.DataFrame({"landing_file": ["w.jsonl", "c.csv"],
                           "landed_at": [dt.datetime(2026, 10, 2, 0, 0), dt.datetime(2026, 10, 2, 0, 30)]})
    latencies = update_latencies(events, landed, dt.datetime(2026, 10, 2, 1, 0))
    assert latencies["since_landing_seconds"].to_list() == [3600.0, 3600.0, 1800.0, None]
    assert latencies["since_event_seconds"].to_list() == [15 * 3600.0, 14 * 3600.0, 13 * 3600.0, 13 * 3600.0]
    assert percentiles(latencies["since_landing_seconds"]) == pytest.approx([3600.0, 3600.0])
    assert percentiles(pl.Series([], dtype=pl.Float64)) == [None, None]


def test_a_kpi_breaches_only_past_its_own_threshold():
    thresholds = KpiThresholds(max_update_latency_p95_seconds=60, min_cross_channel_consistency=0.8,
                               min_lift_over_ablation=0.0, min_lift_over_popularity=0.0)
    rows = kpi_rows(dt.date(2026, 10, 2), {
        "update_latency_p95_seconds": 61.0, "cross_channel_consistency": 0.8, "lift_over_ablation": -0.01,
        "lift_over_popularity": None, "multichannel_people": 12.0,
    }, thresholds)
    breached = dict(rows.select("kpi", "breached").iter_rows())
    assert breached == {"update_latency_p95_seconds": True, "cross_channel_consistency": False,
                        "lift_over_ablation": True, "lift_over_popularity": False, "multichannel_people": False}
    assert rows.filter(pl.col("kpi") == "multichannel_people")["threshold"].to_list() == [None]
