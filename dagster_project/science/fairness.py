"""Fairness audit: does a persona over- or under-represent a CRM region or age band?

For every persona of a model date and every value of an attribute, the persona's share
of that value (members weighted by their persona weight, among members whose attribute
is known) is set against the population's share (every person with personas that day,
counted once). A gap of more than `max_gap_points` percentage points flags the persona,
provided the gap is also beyond `min_z` standard errors of a share drawn from the
persona's effective number of members: a persona of 30 people differs from the
population by 15 points by chance alone, and a flag should mean a skew, not a small
sample. Pure: frames in, frames out.
"""

from dataclasses import dataclass

import polars as pl

from dagster_project.science.ordered import ordered_sum

ATTRIBUTES = ("region", "age_band")


@dataclass(frozen=True)
class FairnessSettings:
    """A gap above `max_gap_points` percentage points and `min_z` standard errors flags a persona."""

    max_gap_points: float = 15.0
    min_z: float = 3.5


def fairness_gaps(
    memberships: pl.DataFrame, attributes: pl.DataFrame, settings: FairnessSettings = FairnessSettings()
) -> pl.DataFrame:
    """One row per model date, persona, attribute and value, with the gap and whether it is flagged.

    `memberships`: event_date, person_id, persona_id, weight (the `user_personas` table).
    `attributes`: person_id and one column per name in `ATTRIBUTES` (the `dim_persons` table).
    Every value present in the day's population gets a row for every persona, so a
    persona with no member of a region shows that region at share 0.
    Columns: event_date, persona_id, attribute, value, persona_share, population_share,
    gap_points, effective_members, flagged.
    """
    long = (
        memberships.select("event_date", "person_id", "persona_id", "weight")
        .join(attributes.select("person_id", *ATTRIBUTES), on="person_id", how="inner")
        .unpivot(index=["event_date", "person_id", "persona_id", "weight"], on=list(ATTRIBUTES),
                 variable_name="attribute", value_name="value")
        .filter(pl.col("value").is_not_null())
    )
    population = (
        long.unique(["event_date", "person_id", "attribute"])
        .group_by("event_date", "attribute", "value")
        .agg(pl.len().alias("people"))
        .with_columns(population_share=pl.col("people") / pl.col("people").sum().over("event_date", "attribute"))
        .drop("people")
    )
    persona_totals = long.group_by("event_date", "persona_id", "attribute").agg(
        total_weight=ordered_sum(pl.col("weight")),
        # Kish's effective sample size of a weighted share.
        effective_members=ordered_sum(pl.col("weight")) ** 2 / ordered_sum(pl.col("weight") ** 2),
    )
    persona_weights = long.group_by("event_date", "persona_id", "attribute", "value").agg(ordered_sum(pl.col("weight")))
    standard_error = (
        pl.col("population_share") * (1 - pl.col("population_share")) / pl.col("effective_members")
    ).sqrt()
    return (
        persona_totals.join(population, on=["event_date", "attribute"])
        .join(persona_weights, on=["event_date", "persona_id", "attribute", "value"], how="left")
        .with_columns(persona_share=pl.col("weight").fill_null(0.0) / pl.col("total_weight"))
        .with_columns(gap_points=(pl.col("persona_share") - pl.col("population_share")) * 100)
        .with_columns(
            flagged=(pl.col("gap_points").abs() > settings.max_gap_points)
            & (pl.col("gap_points").abs() / 100 > settings.min_z * standard_error)
        )
        .select("event_date", "persona_id", "attribute", "value", "persona_share", "population_share",
                "gap_points", "effective_members", "flagged")
        .sort("event_date", "persona_id", "attribute", "value")
    )
