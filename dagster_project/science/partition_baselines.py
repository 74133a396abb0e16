"""Memory-level truth and the trivial partitions the persona clustering must beat.

On sample data each event carries its planted persona (null for noise). A memory's truth
is its events' majority persona; the persona clustering's ARI/NMI against that truth only
means something next to what a partition with no model gets: one cluster per category,
or intent families fitted once over the window.
"""

from __future__ import annotations

import polars as pl

from dagster_project.science.intent_families import fit_intent_families
from dagster_project.science.metrics import clustering_agreement


def memory_truth(records: pl.DataFrame, memory_events: pl.DataFrame) -> pl.DataFrame:
    """Each memory's planted persona (the majority over its events with one) and its purity.

    records: record_id, persona (null for noise events); memory_events: memory_id, record_id.
    purity: share of all the memory's events carrying the majority persona. Memories whose
    events all lack a persona are left out. Ties go to the smallest persona.
    Columns memory_id, planted_persona_id, purity.
    """
    joined = memory_events.join(records.select("record_id", "persona"), on="record_id")
    sizes = joined.group_by("memory_id").agg(pl.len().alias("n_events"))
    return (
        joined.drop_nulls("persona")
        .group_by("memory_id", "persona").len()
        .sort("memory_id", "len", "persona", descending=[False, True, False])
        .group_by("memory_id", maintain_order=True).first()
        .join(sizes, on="memory_id")
        .select("memory_id", planted_persona_id="persona", purity=pl.col("len") / pl.col("n_events"))
    )


def partition_baselines(memory_events: pl.DataFrame, events: pl.DataFrame, truth: pl.DataFrame) -> dict[str, dict]:
    """ARI/NMI against the truth of two trivial memory partitions, on the memories the model is scored on.

    by_category: one cluster per category (a memory's majority event category, uncategorised
    memories together); intent_families: that category's family, families fitted once over
    the window's events (``fit_intent_families``). events: event_id, person_id, ts, category.
    """
    categorised = memory_events.join(events.rename({"event_id": "record_id"}), on="record_id")
    majority = (
        categorised.drop_nulls("category")
        .group_by("memory_id", "category").len()
        .sort("memory_id", "len", "category", descending=[False, True, False])
        .group_by("memory_id", maintain_order=True).first()
    )
    families = fit_intent_families(events)
    scored = (
        truth.join(majority.select("memory_id", "category"), on="memory_id", how="left")
        .with_columns(pl.col("category").fill_null(""))
        .with_columns(pl.col("category").replace(families).alias("family"))
    )
    planted = scored["planted_persona_id"].to_list()
    return {
        "by_category": {**clustering_agreement(scored["category"].to_list(), planted),
                        "n_clusters": scored["category"].n_unique()},
        "intent_families": {**clustering_agreement(scored["family"].to_list(), planted),
                            "n_clusters": scored["family"].n_unique()},
    }
