"""The three persona KPIs of a model date, as pure functions of frames.

- update latency: how long after its data landed an event's day is visible as personas;
- cross-channel consistency: whether the persona a person's memories of one channel point
  to is the persona all their channels give, for people seen on two channels or more;
- business alignment: the next-day Hit@10 the persona ranker gains over its own ablation
  (the same blend without the persona term) and over popularity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

ALIGNMENT_K = 10
PERSONA_RANKER = "personas"
ABLATION = "personas_without_persona_term"
POPULARITY = "popularity"
KPI_SCHEMA = {"event_date": pl.Date, "kpi": pl.String, "value": pl.Float64, "threshold": pl.Float64, "breached": pl.Boolean}


@dataclass(frozen=True)
class KpiThresholds:
    """Limits of the WARN check, calibrated on the 14-day demo (docs/monitoring.md, "Persona KPIs").

    Latency: a day's personas should be visible within an hour of its files landing (the
    demo's run takes minutes). Consistency: the demo's days lie between 0.89 and 0.98;
    under 0.8 a channel tells another story than the person's top persona. Lifts: the demo's
    lift over the ablation swings between -0.024 and +0.082 a day (a few hundred people a
    day; +0.017 pooled over the window), so only a loss beyond 3 points of Hit@10 warns; over popularity the demo's
    smallest lift is +0.089, so under +0.05 the personas stop paying for themselves.
    """

    max_update_latency_p95_seconds: float = 3600.0
    min_cross_channel_consistency: float = 0.8
    min_lift_over_ablation: float = -0.03
    min_lift_over_popularity: float = 0.05


def update_latencies(events: pl.DataFrame, landed_at: pl.DataFrame, visible_at: dt.datetime) -> pl.DataFrame:
    """Per event, seconds from its landing file's arrival and from its own timestamp to `visible_at`.

    events: landing_file, ts (naive UTC); landed_at: landing_file, landed_at (naive UTC, the
    file's mtime); visible_at: naive UTC time the day's personas were written.
    """
    visible = pl.lit(visible_at, dtype=pl.Datetime("us"))
    return events.join(landed_at, on="landing_file", how="left").select(
        since_landing_seconds=(visible - pl.col("landed_at").cast(pl.Datetime("us"))).dt.total_microseconds() / 1e6,
        since_event_seconds=(visible - pl.col("ts").cast(pl.Datetime("us"))).dt.total_microseconds() / 1e6,
    )


def percentiles(values: pl.Series, quantiles: tuple[float, ...] = (50, 95)) -> list[float | None]:
    """Percentiles of the non-null values, None for each when there are none."""
    present = values.drop_nulls().to_numpy()
    if present.size == 0:
        return [None] * len(quantiles)
    return [float(value) for value in np.percentile(present, quantiles)]


def channel_personas(memories: pl.DataFrame) -> pl.DataFrame:
    """Per person and source, the majority persona of the memories holding that source (ties: lowest id).

    memories: person_id, sources (list of source names), persona_id.
    """
    return (
        memories.explode("sources").rename({"sources": "source"})
        .group_by("person_id", "source", "persona_id").len()
        .sort(["person_id", "source", "len", "persona_id"], descending=[False, False, True, False])
        .group_by("person_id", "source", maintain_order=True).first()
        .select("person_id", "source", channel_persona_id="persona_id")
    )


def top_personas(user_personas: pl.DataFrame) -> pl.DataFrame:
    """Per person, the persona of highest weight (ties: lowest id)."""
    return (
        user_personas.sort(["person_id", "weight", "persona_id"], descending=[False, True, False])
        .group_by("person_id", maintain_order=True).first()
        .select("person_id", top_persona_id="persona_id")
    )


@dataclass(frozen=True)
class Consistency:
    """Mean over people on >= 2 channels of the share of their channels agreeing with their top persona."""

    value: float | None
    people: int
    by_source: dict[str, float]


def cross_channel_consistency(memories: pl.DataFrame, user_personas: pl.DataFrame) -> Consistency:
    """memories: person_id, sources, persona_id of the model date's window; user_personas: person_id, persona_id, weight."""
    channels = channel_personas(memories)
    multichannel = channels.group_by("person_id").len().filter(pl.col("len") >= 2).select("person_id")
    agreement = (
        channels.join(multichannel, on="person_id")
        .join(top_personas(user_personas), on="person_id")
        .with_columns(agrees=(pl.col("channel_persona_id") == pl.col("top_persona_id")).cast(pl.Float64))
    )
    if agreement.is_empty():
        return Consistency(None, 0, {})
    per_person = agreement.group_by("person_id").agg(pl.col("agrees").mean())
    by_source = agreement.group_by("source").agg(pl.col("agrees").mean()).sort("source")
    return Consistency(float(per_person["agrees"].mean()), per_person.height, dict(by_source.iter_rows()))


def business_alignment(utility: pl.DataFrame, k: int = ALIGNMENT_K) -> dict[str, float | None]:
    """Hit@k of the persona ranker minus its ablation's and popularity's (utility: method, k, hit_rate)."""
    hits = dict(utility.filter(pl.col("k") == k).select("method", "hit_rate").iter_rows())
    ranker = hits.get(PERSONA_RANKER)

    def lift(baseline: str) -> float | None:
        return None if ranker is None or hits.get(baseline) is None else ranker - hits[baseline]

    return {"lift_over_ablation": lift(ABLATION), "lift_over_popularity": lift(POPULARITY)}


def kpi_rows(day: dt.date, values: dict[str, float | None], thresholds: KpiThresholds) -> pl.DataFrame:
    """The `persona_kpis` rows of a day: every KPI with its threshold (None if it has none) and whether it breached."""
    limits = {
        "update_latency_p95_seconds": (thresholds.max_update_latency_p95_seconds, "max"),
        "cross_channel_consistency": (thresholds.min_cross_channel_consistency, "min"),
        "lift_over_ablation": (thresholds.min_lift_over_ablation, "min"),
        "lift_over_popularity": (thresholds.min_lift_over_popularity, "min"),
    }
    rows = []
    for kpi, value in values.items():
        limit, kind = limits.get(kpi, (None, None))
        breached = value is not None and limit is not None and (value > limit if kind == "max" else value < limit)
        rows.append({"event_date": day, "kpi": kpi, "value": value, "threshold": limit, "breached": breached})
    return pl.DataFrame(rows, schema=KPI_SCHEMA)
