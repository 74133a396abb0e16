"""Thin assets around the persona science: read partitions from DuckDB, call pure functions, write back."""

from dataclasses import replace
from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    multi_asset,
)

from dagster_project.asset_defaults import DAILY_STEP, daily_asset, daily_spec
from dagster_project.markdown import markdown_table
from dagster_project.metadata import column_schema, day_metadata
from dagster_project.partitions import days_between, partition_dates
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.review.overrides import apply_label_overrides
from dagster_project.review.store import active_label_overrides
from dagster_project.run_config import config_from_settings, settings_from_config
from dagster_project.science.daily import PersonaSettings, fit_day, memories_for_day
from dagster_project.science.labelling import explanation_text
from dagster_project.science.utility import POPULARITY_DAYS, ranker_inputs, utility_for_day
from dagster_project.tracking.fit_runs import FitLogger
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.warehouse import read_frame, replace_partition_rows, scalar, table_exists
from dagster_project.window_preparer import WindowPreparer

MIN_MEMORIES_TO_FIT = 30
# A persona fit as of D reads the memories of [D - W + 1, D]: a changed day reruns the fits whose
# window holds it. Lineage uses the default W; a run configured with another W reads its own window.
WINDOW_MAPPING = TimeWindowPartitionMapping(start_offset=1 - PersonaSettings().window_days)


PersonaModelConfig = config_from_settings(
    "PersonaModelConfig", PersonaSettings, "The knobs of `PersonaSettings` a run may set in the launchpad."
)


@daily_asset(
    __name__,
    deps=[AssetKey("fct_events")],
    group_name="personas",
    kinds={"duckdb", "polars", "sklearn"},
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
        events_per_day = dict(events.group_by("event_date").len().iter_rows())
        # One pass over the range's events; days without events are absent. A single day is not split
        # (a copy of every event: 0.14 s of a 1M-event day).
        memories = pl.concat(
            [memories_for_day(day_events, config.gap_minutes)
             for day_events in ([events] if len(events_per_day) == 1
                                else events.partition_by("event_date", maintain_order=True))]
            or [pl.DataFrame()],
            how="diagonal_relaxed",
        )
        del events  # as large as the memories: not kept through their write
        if memories.is_empty():
            context.log.warning(f"No events in fct_events for {first}..{last}: no memories")
        else:
            # Stored in any order: every reader joins, aggregates or sorts (`prepare_window`) them.
            replace_partition_rows(connection, "main.intent_memories", memories, first, last,
                                   zstd_columns=("summary", "text"), keep_row_order=False)
    day_metadata(context, _memory_metadata_by_day(events_per_day, memories, days_between(first, last)))
    return MaterializeResult(metadata={"dagster/column_schema": column_schema(memories)} if memories.height else {})


def _memory_metadata_by_day(events_per_day: dict[date, int], memories: pl.DataFrame, days: list[date]) -> dict[date, dict]:
    """Each day's memory count, event count, mean events per memory, multi-source share and five summaries."""
    per_day = {row["event_date"]: row for row in memories.group_by("event_date").agg(
        pl.len().alias("memories"),
        pl.col("n_events").mean().alias("mean_events_per_memory"),
        (pl.col("sources").list.len() > 1).mean().alias("multi_source_share"),
        pl.col("summary").head(5).alias("examples"),
    ).iter_rows(named=True)} if memories.height else {}
    empty = {"memories": 0, "mean_events_per_memory": 0.0, "multi_source_share": 0.0, "examples": []}
    return {
        day: {
            "dagster/row_count": (row := per_day.get(day, empty))["memories"],
            "events": events_per_day.get(day, 0),
            "mean_events_per_memory": float(row["mean_events_per_memory"]),
            "multi_source_share": float(row["multi_source_share"]),
            "example_summaries": MetadataValue.md("\n".join(f"- {summary}" for summary in row["examples"]) or "none"),
        }
        for day in days
    }


def _persona_markdown(personas: pl.DataFrame, summaries: dict[str, str]) -> str:
    """Catalogue table plus, per persona, what distinguishes it and its top evidence, for the Dagster UI."""
    lines = [markdown_table(
        ["id", "label", "share", "memories", "people", "quality", "coverage"],
        [
            [row["persona_id"], row["label"], f"{row['share']:.1%}", row["n_memories"], row["n_users"],
             f"{row['quality']:.2f}", f"{row['coverage']:.2f}"]
            for row in personas.sort("share", descending=True).iter_rows(named=True)
        ],
    )]
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
    if has_history and len(days_of_this_run) < memory_days:  # else this run fitted every day of them
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
    return markdown_table(
        ["parent", "label", "share", "children"],
        [
            [row["persona_id"], row["label"], f"{row['share']:.1%}",
             "; ".join(f"{child} {label_of.get(child, '')}" for child in row["child_persona_ids"])]
            for row in parents.sort("share", descending=True).iter_rows(named=True)
        ],
    )


def _lineage_markdown(lineage: pl.DataFrame) -> str:
    """Every lineage event of a model date but `continued`, and how many ids continued."""
    changes = lineage.filter(pl.col("event") != "continued").sort("event_date", "level", "persona_id")
    continued = lineage.filter(pl.col("event") == "continued").group_by("event_date", "level").len()
    lines = [markdown_table(
        ["date", "level", "id", "event", "related", "similarity"],
        [
            [row["event_date"], row["level"], row["persona_id"], row["event"], ", ".join(map(str, row["related_ids"])),
             None if row["similarity"] is None else f"{row['similarity']:.2f}"]
            for row in changes.iter_rows(named=True)
        ],
    )]
    lines += ["", "Continued per day: " + ", ".join(
        f"{row['event_date']} {row['level']} {row['len']}"
        for row in continued.sort("event_date", "level").iter_rows(named=True)
    )]
    return "\n".join(lines)


def _previous_personas(connection, fits: dict, day: date, has_history: bool) -> pl.DataFrame | None:
    """The latest personas and parent personas before `day`, this run's fits first: their label wording is
    kept while it holds (parent ids come from the personas' sequence, so the two never share an id)."""
    earlier = [fitted for fitted in fits if fitted < day]
    if earlier:
        latest = fits[max(earlier)]
        return pl.concat([latest.personas, latest.parents], how="diagonal_relaxed")
    if not has_history:
        return None
    latest_day = "(select max(event_date) from personas where event_date < ?)"
    personas = read_frame(connection, f"select * from personas where event_date = {latest_day}", [day])
    if not table_exists(connection, "persona_parents"):
        return personas
    parents = read_frame(connection, f"select * from persona_parents where event_date = {latest_day}", [day])
    return pl.concat([personas, parents], how="diagonal_relaxed")


@multi_asset(
    specs=[
        daily_spec("memory_assignments", __name__, kinds={"duckdb", "sklearn"},
                   deps=[AssetDep("intent_memories", partition_mapping=WINDOW_MAPPING)],
                   description="Persona of every memory in the sliding window, per model date, "
                   "with its cosine distance to the centroid."),
        daily_spec("personas", __name__, kinds={"duckdb", "sklearn"}, deps=["memory_assignments"],
                   description="Labelled personas per model date: c-TF-IDF terms, an evidence-supported description, "
                   "evidence memories, quality scores and parent_persona_id; with it persona_parents (the hierarchy) "
                   "and persona_lineage (born, continued, split_from, merged_into, retired per id and day)."),
        daily_spec("user_personas", __name__, kinds={"duckdb", "sklearn"}, deps=["personas"],
                   description="Each person's personas (up to 5, weights sum to 1) "
                   "with a person-specific label and evidence memories."),
    ],
    **DAILY_STEP,
    group_name="personas",
    can_subset=False,
)
def persona_model(
    context: AssetExecutionContext, config: PersonaModelConfig, duckdb: DuckDBResource, mlflow: MlflowTracking
):
    """Fits the personas of each day of the range in date order, so ids chain from day to day.

    Every fitted day becomes an MLflow run and a version of `persona-model` as soon as it is fitted: over a
    range of several days, in a worker process while the next day fits (`FitLogger`). Over a range of large
    windows, another worker prepares each next day's window (vectors, words) meanwhile (`WindowPreparer`).
    """
    settings = settings_from_config(config, PersonaSettings)
    first, last = partition_dates(context)
    fits, labelled = {}, {}
    window_start = first - timedelta(days=settings.window_days - 1)
    with duckdb.connect() as connection:
        has_history = table_exists(connection, "personas")
        window_memories = read_frame(
            connection, "select * from intent_memories where event_date between ? and ?", [window_start, last]
        )
        largest_id_outside = _largest_id_outside(connection, first, last) if has_history else 0
        overrides = active_label_overrides(connection)  # human labels (`personas label set`) over computed ones
        earlier_shares = read_frame(
            connection, "select event_date, persona_id, label, share from personas where event_date between ? and ?",
            [window_start, first - timedelta(days=1)],
        ) if has_history else None
        days = days_between(first, last)

        def window_of(day: date) -> pl.DataFrame:
            return window_memories.filter(
                pl.col("event_date").is_between(day - timedelta(days=settings.window_days - 1), day))

        per_day = dict(window_memories.group_by("event_date").len().iter_rows())
        window_sizes = {day: sum(count for memory_day, count in per_day.items()
                                 if day - timedelta(days=settings.window_days) < memory_day <= day) for day in days}
        skipped = [day.isoformat() for day, size in window_sizes.items() if size < MIN_MEMORIES_TO_FIT]
        to_fit = [day for day, size in window_sizes.items() if size >= MIN_MEMORIES_TO_FIT]
        with FitLogger(mlflow.store(), settings, window_memories, earlier_shares, context.run.run_id,
                       days_to_fit=len(days)) as logger, \
                WindowPreparer(to_fit, window_of, settings, max(window_sizes.values())) as preparer:
            for day in to_fit:
                history, recent_lineage = _recent_identity(
                    connection, fits, day, settings.identity_memory_days, has_history)
                next_id = max([largest_id_outside, *(fit.next_persona_id - 1 for fit in fits.values())]) + 1
                prepared = preparer.prepared(day)
                fits[day] = fit_day(prepared.window, day, history, next_id, settings, recent_lineage,
                                    _previous_personas(connection, fits, day, has_history), prepared)
                # The chain goes on from the computed labels; tables and MLflow get the human ones.
                labelled[day] = replace(fits[day], personas=apply_label_overrides(fits[day].personas, overrides))
                logger.log(labelled[day])
            fits = labelled
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
            versions = logger.versions()
    if skipped:
        context.log.warning(f"Fewer than {MIN_MEMORIES_TO_FIT} memories in the window of {', '.join(skipped)}: not fitted")
    _fit_metadata(context, fits, versions, window_memories, days)
    for key in ("memory_assignments", "personas", "user_personas"):
        yield MaterializeResult(
            asset_key=key, metadata={"dagster/column_schema": column_schema(tables[key][0])} if fits else {})


def _fit_metadata(
    context: AssetExecutionContext, fits: dict, versions: dict, memories: pl.DataFrame, days: list[date]
) -> None:
    """Each model date's own counts, quality metrics, catalogue, hierarchy, lineage and model version."""
    evidence = {memory_id for fit in fits.values()
                for memory_id in fit.personas["evidence_memory_ids"].list.head(3).explode().drop_nulls()}
    shown = memories.filter(pl.col("memory_id").is_in(list(evidence)))
    summaries = dict(zip(shown["memory_id"], shown["summary"], strict=True))
    not_fitted = {"fitted": f"no: fewer than {MIN_MEMORIES_TO_FIT} memories in the window", "dagster/row_count": 0}
    by_key: dict[str, dict[date, dict]] = {"memory_assignments": {}, "personas": {}, "user_personas": {}}
    for day in days:
        fit = fits.get(day)
        if fit is None:
            for per_day in by_key.values():
                per_day[day] = not_fitted
            continue
        by_key["memory_assignments"][day] = {
            "dagster/row_count": fit.assignments.height, "mean_distance": float(fit.assignments["distance"].mean()),
        }
        by_key["personas"][day] = {
            "dagster/row_count": fit.personas.height,
            **fit.metrics,
            "model_version": f"persona-model v{versions[day].version}",
            "catalogue": MetadataValue.md(_persona_markdown(fit.personas, summaries)),
            "parents": MetadataValue.md(_parents_markdown(fit.parents, fit.personas)),
            "lineage": MetadataValue.md(_lineage_markdown(fit.lineage)),
        }
        by_key["user_personas"][day] = {
            "dagster/row_count": fit.user_personas.height,
            "mean_personas_per_person": float(fit.user_personas.group_by("person_id").len()["len"].mean()),
        }
    for key, per_day in by_key.items():
        day_metadata(context, per_day, asset_key=key)


@daily_asset(
    __name__,
    deps=[AssetDep("user_personas", partition_mapping=TimeWindowPartitionMapping(start_offset=-1)), AssetKey("fct_events")],
    group_name="evaluation",
    kinds={"duckdb", "polars"},
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
    day_metadata(context, {
        day: {"dagster/row_count": 0, "evaluated": "no: no personas the day before"} if day not in results else {
            "dagster/row_count": results[day][1].height,
            **{f"hit_at_{row['k']}_{row['method']}": row["hit_rate"] for row in results[day][1].iter_rows(named=True)},
            "blend_weights": "persona {}, knn {}, persona popularity {}; ablation knn {}".format(
                *results[day][2][0], results[day][2][1][1]),
        }
        for day in days_between(first, last)
    })
    return MaterializeResult(metadata={} if utility.is_empty() else {"dagster/column_schema": column_schema(utility)})
