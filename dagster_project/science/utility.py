"""Next-day utility of a day's personas: every ranker's scores for the people active that day, the
persona ranker's blend tuned on the day before, and the hits of all methods on the same people."""

from datetime import date, timedelta

import polars as pl

from dagster_project.science.recommenders import (
    blend_scores,
    category_profile_recommendations,
    item_knn_recommendations,
    next_day_hits,
    persona_category_recommendations,
    persona_recommendations,
    popularity_recommendations,
    ranker_weights,
    summarise_hits,
    tune_blend_and_ablation,
)

POPULARITY_DAYS = 30
UTILITY_K = (10, 50)
# Persona-ranker weights (`ranker_weights` arguments) when no earlier day can tune them.
DEFAULT_BLEND = (0.5, 0.25, 0.0)


def static_memberships(user_personas_before: pl.DataFrame) -> pl.DataFrame:
    """The static baseline: each person's personas, every weight kept, from the first time they were fitted."""
    return user_personas_before.filter(
        pl.col("event_date") == pl.col("event_date").min().over("person_id")
    ).select("person_id", "persona_id", "weight")


def ranker_inputs(events: pl.DataFrame, user_personas: pl.DataFrame, day: date) -> dict[str, pl.DataFrame] | None:
    """Every ranker's scores for the people active on `day`, from the 30 days before it and the
    personas as of the day before; None without personas for that day."""
    yesterday = day - timedelta(days=1)
    memberships = user_personas.filter(pl.col("event_date") == yesterday)
    if memberships.is_empty():
        return None
    history = events.filter(pl.col("event_date").is_between(day - timedelta(days=POPULARITY_DAYS), yesterday))
    persons = events.filter(pl.col("event_date") == day)["person_id"].unique()
    return {
        "popularity": popularity_recommendations(history, persons),
        "category_profile": category_profile_recommendations(history, persons, day),
        "item_knn": item_knn_recommendations(history, persons),
        "static": persona_recommendations(
            history, static_memberships(user_personas.filter(pl.col("event_date") <= yesterday)), persons
        ),
        "persona_popularity": persona_recommendations(history, memberships, persons),
        "persona_category": persona_category_recommendations(history, memberships, persons, day),
    }


def utility_for_day(
    events: pl.DataFrame,
    day: date,
    scores: dict[str, pl.DataFrame],
    validation_scores: dict[str, pl.DataFrame] | None,
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[tuple[float, float, float], tuple[float, float, float]]]:
    """Next-day hits on `day` of the persona ranker, its ablation and every baseline, for the same people.

    scores: ``ranker_inputs`` of `day`; validation_scores: those of the day before, on which
    the persona ranker's blend weights, and separately the ablation's (no persona term), are
    tuned (never on `day`); without them the defaults are used. Returns the per-person hits
    (event_date, person_id, method, k, hit, recall), their summary (event_date, method, k,
    hit_rate, recall, n_users) and the weights of the persona ranker and of its ablation.
    """
    validation_day = day - timedelta(days=1)
    weights, ablation_weights = DEFAULT_BLEND, (0.0, *DEFAULT_BLEND[1:])
    if validation_scores is not None:
        validation_history = events.filter(
            pl.col("event_date").is_between(
                validation_day - timedelta(days=POPULARITY_DAYS), validation_day - timedelta(days=1)
            )
        )
        validation_events = events.filter(pl.col("event_date") == validation_day)
        weights, ablation_weights = tune_blend_and_ablation(validation_history, validation_events, validation_scores)
    methods = {
        "personas": blend_scores(scores, ranker_weights(*weights)),
        "personas_without_persona_term": blend_scores(scores, ranker_weights(*ablation_weights)),
        **scores,
    }
    history = events.filter(pl.col("event_date").is_between(day - timedelta(days=POPULARITY_DAYS), validation_day))
    hits = next_day_hits(history, events.filter(pl.col("event_date") == day), methods, UTILITY_K)
    date_column = pl.lit(day, dtype=pl.Date).alias("event_date")
    summary = summarise_hits(hits).select(date_column, "method", "k", "hit_rate", "recall", "n_users")
    return hits.select(date_column, "person_id", "method", "k", "hit", "recall"), summary, (weights, ablation_weights)
