"""Memory-level truth and the trivial partitions the persona clustering must beat.

On sample data each event carries its planted persona (null for noise). A memory's truth
is its events' majority persona; the persona clustering's ARI/NMI against that truth only
means something next to what a partition with no model gets: one cluster per category
(events without one take their object's), or intent families fitted once over the window.
"""

from __future__ import annotations

import polars as pl

from dagster_project.science.intent_families import fit_intent_families
from dagster_project.science.metrics import clustering_agreement
from dagster_project.science.recommenders import UNCATEGORISED, object_categories


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


def with_object_categories(events: pl.DataFrame, object_events: pl.DataFrame) -> pl.DataFrame:
    """``events`` with each null category filled by its object's most frequent category in
    ``object_events`` (object_id, category): a view, cart or order of a product whose category
    another event names is not uncategorised. Events without either stay null."""
    objects = object_categories(object_events).filter(pl.col("category") != UNCATEGORISED)
    return (
        events.join(objects.rename({"category": "object_category"}), on="object_id", how="left")
        .with_columns(pl.coalesce("category", "object_category").alias("category"))
        .drop("object_category")
    )


def partition_baselines(
    memory_events: pl.DataFrame, events: pl.DataFrame, truth: pl.DataFrame, object_events: pl.DataFrame | None = None
) -> dict[str, dict]:
    """ARI/NMI against the truth of two trivial memory partitions, on the memories the model is scored on.

    by_category: one cluster per category, a memory's category being the majority over its
    events' categories (an event without one takes its object's, see ``with_object_categories``;
    ties by name), uncategorised memories only when none of their events has a category;
    intent_families: that category's family, families fitted once over the window's events
    (``fit_intent_families``) with the same filled categories. events: event_id, person_id, ts,
    object_id, category; object_events: object_id, category to learn objects' categories from
    (default: ``events``).
    """
    events = with_object_categories(events, events if object_events is None else object_events)
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
        .with_columns(pl.col("category").fill_null(UNCATEGORISED))
        .with_columns(pl.col("category").replace(families).alias("family"))
    )
    planted = scored["planted_persona_id"].to_list()
    return {
        "by_category": {**clustering_agreement(scored["category"].to_list(), planted),
                        "n_clusters": scored["category"].n_unique()},
        "intent_families": {**clustering_agreement(scored["family"].to_list(), planted),
                            "n_clusters": scored["family"].n_unique()},
    }
