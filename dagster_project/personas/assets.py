"""Thin assets around the persona science: read partitions from DuckDB, call pure functions, write back."""

from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetDep,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from dagster_project.operations.automation import rerun_on_upstream_change
from dagster_project.partitions import daily_partitions, days_between, partition_dates, single_run_backfill
from dagster_project.resources.duckdb import (
    DUCKDB_POOL, DuckDBResource, read_frame, replace_partition_rows, scalar, table_exists,
)
from dagster_project.run_config import config_from_settings, settings_from_config
from dagster_project.science.daily import PersonaSettings, fit_day, memories_for_day
from dagster_project.science.labelling import explanation_text
from dagster_project.science.recommenders import (
    blend_scores, category_profile_recommendations, item_knn_recommendations, next_day_hits,
    persona_category_recommendations, persona_recommendations, popularity_recommendations, ranker_weights,
    summarise_hits, tune_blend,
)
from dagster_project.review.store import overridden_fits
from dagster_project.tracking.fit_runs import log_day_fit
from dagster_project.tracking.resource import MlflowTracking

MIN_MEMORIES_TO_FIT = 30
POPULARITY_DAYS = 30
UTILITY_K = (10, 50)
# Persona-ranker weights (`ranker_weights` arguments) when no earlier day can tune them.
DEFAULT_BLEND = (0.5, 0.25, 0.0)
OWNERS = ["team:persona-science"]
# Bump when the science changes: the UI then marks these assets stale.
CODE_VERSION = "3"
# A persona fit as of D reads the memories of [D - W + 1, D]: a changed day reruns the fits whose
# window holds it. Lineage uses the default W; a run configured with another W reads its own window.
WINDOW_MAPPING = TimeWindowPartitionMapping(start_offset=1 - PersonaSettings().window_days)


PersonaModelConfig = config_from_settings(
    "PersonaModelConfig", PersonaSettings, "The knobs of `PersonaSettings` a run may set in the launchpad."
)


@asset(
    deps=[AssetKey("fct_events")],
    automation_condition=rerun_on_upstream_change,
    code_version=CODE_VERSION,
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
    group_name="personas",
    kinds={"duckdb", "polars", "sklearn"},
    owners=OWNERS,
    description="Intent memories: contiguous runs of one person's events with the same intent "
    "(category family, inferred from text where an event has no category), with a readable summary.",
)
def intent_memories(context: AssetExecutionContext, config: PersonaModelConfig, duckdb: DuckDBResource) -> MaterializeResult:
    first, last = partition_dates(context)
    with duckdb.connect() as connection:
        events = read_frame(
            connection,
            "select event_id, person_id, event_date, ts, source, action, category, text "
            "from fct_events where event_date between ? and ?",
            [first, last],
        )
        # One pass over the range's events; days without events are absent.
        memories = pl.concat(
            [memories_for_day(day_events, config.gap_minutes)
             for day_events in events.partition_by("event_date", maintain_order=True)]
            or [pl.DataFrame()],
            how="diagonal_relaxed",
        )
        if memories.is_empty():
            context.log.warning(f"No events in fct_events for {first}..{last}: no memories")
        else:
            replace_partition_rows(
                connection, "main.intent_memories", memories, first, last, zstd_columns=("summary", "text")
            )
    return MaterializeResult(metadata={
        "dagster/row_count": memories.height,
        "events": events.height,
        "mean_events_per_memory": float(memories["n_events"].mean()) if memories.height else 0.0,
        "multi_source_share": float((memories["sources"].list.len() > 1).mean()) if memories.height else 0.0,
        "example_summaries": MetadataValue.md("\n".join(f"- {s}" for s in memories["summary"].head(5).to_list()))
        if memories.height else "none",
    })


def _persona_markdown(personas: pl.DataFrame, memories: pl.DataFrame) -> str:
    """Catalogue table plus, per persona, what distinguishes it and its top evidence, for the Dagster UI."""
    lines = ["| id | label | share | memories | people | quality | coverage |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {row['persona_id']} | {row['label']} | {row['share']:.1%} | {row['n_memories']} | {row['n_users']} "
        f"| {row['quality']:.2f} | {row['coverage']:.2f} |"
        for row in personas.sort("share", descending=True).iter_rows(named=True)
    ]
    summaries = dict(zip(memories["memory_id"], memories["summary"], strict=True))
    for row in personas.sort("share", descending=True).iter_rows(named=True):
        lines += ["", f"**{row['label']}** — {row['description']}", "", f"Why: {explanation_text(row['explanation'])}", ""]
        lines += [f"- {summaries.get(memory_id, memory_id)}" for memory_id in row["evidence_memory_ids"][:3]]
    return "\n".join(lines)


def _recent_identity(
    connection, fits: dict, day: date, memory_days: int, has_history: bool
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Assignments (event_date, memory_id, persona_id, parent_persona_id) and lineage of the model
    dates of [day - memory_days, day - 1]: this run's fits first, stored rows for the other days."""
    since = day - timedelta(days=memory_days)
    recent = [fit for fitted_day, fit in fits.items() if since <= fitted_day < day]
    histories = [
        fit.assignments.join(fit.personas.select("persona_id", "parent_persona_id"), on="persona_id", how="left")
        .select("event_date", "memory_id", "persona_id", "parent_persona_id")
        for fit in recent
    ]
    lineages = [fit.lineage for fit in recent]
    days_of_this_run = [fitted_day for fitted_day in fits if since <= fitted_day < day]  # not read back
    if has_history:
        parent_column = (
            "p.parent_persona_id" if "parent_persona_id" in _columns(connection, "personas") else "null::bigint"
        )
        histories.append(read_frame(
            connection,
            f"""select a.event_date, a.memory_id, a.persona_id, {parent_column} as parent_persona_id
                from memory_assignments a join personas p using (event_date, persona_id)
                where a.event_date between ? and ? and a.event_date not in (select unnest(?::date[]))""",
            [since, day - timedelta(days=1), days_of_this_run],
        ))
        if table_exists(connection, "persona_lineage"):
            lineages.append(read_frame(
                connection,
                "select * from persona_lineage where event_date between ? and ? "
                "and event_date not in (select unnest(?::date[]))",
                [since, day - timedelta(days=1), days_of_this_run],
            ))
    history = pl.concat(histories, how="vertical_relaxed") if histories else None
    lineage = pl.concat(lineages, how="vertical_relaxed") if lineages else None
    return history, lineage


def _columns(connection, table: str) -> set[str]:
    return {row[0] for row in connection.execute(f"describe {table}").fetchall()}


def _largest_id_outside(connection, first: date, last: date) -> int:
    """The largest persona or parent id of every model date outside [first, last], the days this run rewrites:
    rerunning a middle day never hands out an id a later day already uses, and rerunning a day twice gives the
    same ids."""
    largest = 0
    for table in ("personas", "persona_lineage"):
        if table_exists(connection, table):
            largest = max(largest, scalar(
                connection, f"select coalesce(max(persona_id), 0) from {table} where event_date not between ? and ?",
                [first, last]))
    return int(largest)


def _parents_markdown(parents: pl.DataFrame, personas: pl.DataFrame) -> str:
    """The hierarchy of the day: each parent, its share and its children's labels."""
    if parents.is_empty():
        return "no parent personas"
    label_of = dict(zip(personas["persona_id"], personas["label"], strict=True))
    lines = ["| parent | label | share | children |", "|---|---|---|---|"]
    lines += [
        f"| {row['persona_id']} | {row['label']} | {row['share']:.1%} | "
        + "; ".join(f"{child} {label_of.get(child, '')}" for child in row["child_persona_ids"]) + " |"
        for row in parents.sort("share", descending=True).iter_rows(named=True)
    ]
    return "\n".join(lines)


def _lineage_markdown(lineage: pl.DataFrame) -> str:
    """Every lineage event of the range but `continued`, and how many ids continued per day."""
    changes = lineage.filter(pl.col("event") != "continued").sort("event_date", "level", "persona_id")
    continued = lineage.filter(pl.col("event") == "continued").group_by("event_date", "level").len()
    lines = ["| date | level | id | event | related | similarity |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {row['event_date']} | {row['level']} | {row['persona_id']} | {row['event']} | "
        f"{', '.join(map(str, row['related_ids']))} | "
        + ("" if row["similarity"] is None else f"{row['similarity']:.2f}") + " |"
        for row in changes.iter_rows(named=True)
    ]
    lines += ["", "Continued per day: " + ", ".join(
        f"{row['event_date']} {row['level']} {row['len']}" for row in continued.sort("event_date", "level").iter_rows(named=True)
    )]
    return "\n".join(lines)


def _previous_personas(connection, fits: dict, day: date, has_history: bool) -> pl.DataFrame | None:
    """The latest personas before `day`, this run's fits first: their label wording is kept while it holds."""
    earlier = [fitted for fitted in fits if fitted < day]
    if earlier:
        return fits[max(earlier)].personas
    if not has_history:
        return None
    return read_frame(
        connection,
        "select * from personas where event_date = (select max(event_date) from personas where event_date < ?)",
        [day],
    )


@multi_asset(
    specs=[
        AssetSpec("memory_assignments", kinds={"duckdb", "sklearn"}, owners=OWNERS, deps=[AssetDep("intent_memories", partition_mapping=WINDOW_MAPPING)],
                  automation_condition=rerun_on_upstream_change, code_version=CODE_VERSION, description="Persona of every memory in the "
                  "sliding window, per model date, with its cosine distance to the centroid."),
        AssetSpec("personas", kinds={"duckdb", "sklearn"}, owners=OWNERS, deps=["memory_assignments"],
                  automation_condition=rerun_on_upstream_change, code_version=CODE_VERSION, description="Labelled personas per model date: c-TF-IDF "
                  "terms, an evidence-supported description, evidence memories, quality scores and parent_persona_id; "
                  "with it persona_parents (the hierarchy) and persona_lineage (born, continued, split_from, "
                  "merged_into, retired per id and day)."),
        AssetSpec("user_personas", kinds={"duckdb", "sklearn"}, owners=OWNERS, deps=["personas"],
                  automation_condition=rerun_on_upstream_change, code_version=CODE_VERSION, description="Each person's personas (up to 5, weights sum "
                  "to 1) with a person-specific label and evidence memories."),
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
    group_name="personas",
    can_subset=False,
)
def persona_model(
    context: AssetExecutionContext, config: PersonaModelConfig, duckdb: DuckDBResource, mlflow: MlflowTracking
):
    """Fits the personas of each day of the range in date order, so ids chain from day to day.

    Once the tables are written, every fitted day becomes an MLflow run and a version of `persona-model`.
    """
    settings = settings_from_config(config, PersonaSettings)
    first, last = partition_dates(context)
    fits, skipped = {}, []
    with duckdb.connect() as connection:
        has_history = table_exists(connection, "personas")
        window_memories = read_frame(
            connection, "select * from intent_memories where event_date between ? and ?",
            [first - timedelta(days=settings.window_days - 1), last],
        )
        for day in days_between(first, last):
            window = window_memories.filter(
                pl.col("event_date").is_between(day - timedelta(days=settings.window_days - 1), day)
            )
            if window.height < MIN_MEMORIES_TO_FIT:
                skipped.append(day.isoformat())
                continue
            history, recent_lineage = _recent_identity(connection, fits, day, settings.identity_memory_days, has_history)
            used_ids = [fit.next_persona_id - 1 for fit in fits.values()]
            if has_history:
                used_ids.append(_largest_id_outside(connection, first, last))
            fits[day] = fit_day(window, day, history, int(max(used_ids, default=0)) + 1, settings, recent_lineage,
                                _previous_personas(connection, fits, day, has_history))
        fits = overridden_fits(connection, fits)  # human labels (`personas label set`) over computed ones
        tables = {
            "memory_assignments": [fit.assignments for fit in fits.values()],
            "personas": [fit.personas for fit in fits.values()],
            "user_personas": [fit.user_personas for fit in fits.values()],
            # Side tables of `personas` (read with it): what happened to each id, and the parents over them.
            "persona_lineage": [fit.lineage for fit in fits.values()],
            "persona_parents": [fit.parents for fit in fits.values()],
        }
        for table, frames in tables.items():
            if frames:
                replace_partition_rows(connection, f"main.{table}", pl.concat(frames), first, last)
        share_history = read_frame(
            connection, "select event_date, persona_id, label, share from personas where event_date <= ?", [last]
        ) if fits else pl.DataFrame()
    versions = {
        day: log_day_fit(mlflow, fit, settings, window_memories, share_history.filter(pl.col("event_date") <= day),
                         context.run.run_id)
        for day, fit in fits.items()
    }
    if skipped:
        context.log.warning(f"Fewer than {MIN_MEMORIES_TO_FIT} memories in the window of {', '.join(skipped)}: not fitted")
    latest = fits[max(fits)] if fits else None
    common = {"fitted_days": len(fits), "skipped_days": ", ".join(skipped) or "none"}
    yield MaterializeResult(asset_key="memory_assignments", metadata={
        **common, "dagster/row_count": sum(fit.assignments.height for fit in fits.values()),
        "mean_distance": float(latest.assignments["distance"].mean()) if latest else 0.0,
    })
    yield MaterializeResult(asset_key="personas", metadata={
        **common,
        "dagster/row_count": sum(fit.personas.height for fit in fits.values()),
        **({f"latest_{name}": value for name, value in latest.metrics.items()} if latest else {}),
        "catalogue": MetadataValue.md(_persona_markdown(latest.personas, window_memories)) if latest else "none",
        "parents": MetadataValue.md(_parents_markdown(latest.parents, latest.personas)) if latest else "none",
        "lineage": MetadataValue.md(_lineage_markdown(pl.concat([fit.lineage for fit in fits.values()])))
        if fits else "none",
        "model_versions": ", ".join(f"{day}: v{version.version}" for day, version in versions.items()) or "none",
    })
    yield MaterializeResult(asset_key="user_personas", metadata={
        **common,
        "dagster/row_count": sum(fit.user_personas.height for fit in fits.values()),
        "mean_personas_per_person": float(latest.user_personas.group_by("person_id").len()["len"].mean()) if latest else 0.0,
    })


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
            pl.col("event_date").is_between(validation_day - timedelta(days=POPULARITY_DAYS), validation_day - timedelta(days=1))
        )
        validation_events = events.filter(pl.col("event_date") == validation_day)
        weights = tune_blend(validation_history, validation_events, validation_scores)
        ablation_weights = tune_blend(
            validation_history, validation_events, validation_scores, persona_weights=(0.0,), persona_popularity_shares=(0.0,)
        )
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


@asset(
    deps=[AssetDep("user_personas", partition_mapping=TimeWindowPartitionMapping(start_offset=-1)), AssetKey("fct_events")],
    automation_condition=rerun_on_upstream_change,
    code_version=CODE_VERSION,
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    pool=DUCKDB_POOL,
    group_name="evaluation",
    kinds={"duckdb", "polars"},
    owners=OWNERS,
    description="Next-day Hit@K and Recall@K of the persona ranker against popularity (30 days), category profile, "
    "item-kNN, the static first fit and the ranker without its persona term: same people, same day. Per person-day "
    "hits go to persona_utility_hits for paired confidence intervals.",
)
def persona_utility(context: AssetExecutionContext, duckdb: DuckDBResource) -> MaterializeResult:
    first, last = partition_dates(context)
    with duckdb.connect() as connection:
        events = read_frame(
            connection,
            "select person_id, event_date, object_id, category from fct_events where event_date between ? and ?",
            [first - timedelta(days=POPULARITY_DAYS + 1), last],
        )
        user_personas = read_frame(
            connection, "select event_date, person_id, persona_id, weight from user_personas where event_date < ?", [last]
        )
        # Each day's rankers also serve as the next day's validation: keep one day back, not the range.
        results, previous = {}, ranker_inputs(events, user_personas, first - timedelta(days=1))
        for day in days_between(first, last):
            current = ranker_inputs(events, user_personas, day)
            if current is not None:
                results[day] = utility_for_day(events, day, current, previous)
            previous = current
        utility = pl.concat([summary for _, summary, _ in results.values()] or [pl.DataFrame()], how="diagonal_relaxed")
        if not utility.is_empty():
            replace_partition_rows(connection, "main.persona_utility", utility, first, last)
            replace_partition_rows(
                connection, "main.persona_utility_hits", pl.concat([hits for hits, _, _ in results.values()]), first, last
            )
    metadata = {"dagster/row_count": utility.height}
    if not utility.is_empty():
        means = utility.group_by("method", "k").agg(pl.col("hit_rate").mean()).sort("method", "k")
        metadata.update({f"hit_at_{row['k']}_{row['method']}": float(row["hit_rate"]) for row in means.iter_rows(named=True)})
        metadata["blend_weights"] = ", ".join(
            f"{day}: persona {weights[0]}, knn {weights[1]}, persona popularity {weights[2]}; ablation knn {ablation[1]}"
            for day, (_, _, (weights, ablation)) in results.items()
        )
    return MaterializeResult(metadata=metadata)
