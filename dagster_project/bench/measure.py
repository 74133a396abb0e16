"""One benchmark shape in its own process and PERSONAS_HOME: generate its days, materialise them in one run, time it.

A shape is `--days` days of `--events` events each: one large day, or a history of many
small days, whose cost is dominated by what every day costs whatever its data. Run by
`python -m dagster_project.bench` once per shape, so every shape starts from a fresh
interpreter and its peak memory is its own. Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from dagster_project.bench.process_memory import TreeMemorySampler

DAY = date(2026, 10, 1)
EVENTS_PER_PERSON = 5
IDENTITY_MODELS = ("int_identity_links", "int_identity_components", "dim_person_identifiers", "dim_persons")
STEP_STAGES = {
    "raw_landing_lines": "landing to raw lines",
    "dbt_warehouse": "staging and marts (dbt build)",
    "intent_memories": "memories",
    "persona_model": "clustering and labelling",
}


def stage_of(step_key: str) -> str:
    if "_gx_" in step_key:
        return "checks (GX gates)"
    return STEP_STAGES.get(step_key, "utility, drift, champion")


def step_windows(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) epoch seconds of every step of the run, from the Dagster event log."""
    starts, windows = {}, {}
    for entry in instance.all_logs(run_id):
        if not entry.is_dagster_event or not entry.step_key:
            continue
        kind = entry.dagster_event_type.value
        if kind == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key in starts:
            windows[entry.step_key] = (starts[entry.step_key], entry.timestamp)
    return windows


def dbt_identity_seconds(dbt_target: Path, since: float) -> float:
    """Seconds dbt spent in the identity models, from the run's run_results.json (0 if dbt did not run since)."""
    run_results = dbt_target / "run_results.json"
    if not run_results.exists() or run_results.stat().st_mtime < since:
        return 0.0
    results = json.loads(run_results.read_text())["results"]
    return sum(node["execution_time"] for node in results if node["unique_id"].split(".")[-1] in IDENTITY_MODELS)


def measure(home: Path, events: int, seed: int = 7, days: int = 1) -> dict:
    """`events` a day over the `days` days up to DAY; the references (one day's memories) run on single days only."""
    from dagster_project.generator import generate
    from dagster_project.paths import activate_home

    first_day = DAY - timedelta(days=days - 1)
    started = time.perf_counter()
    # One day: a person per 5 events. A history: as many people as events a day, who come back on other days.
    people = max(events // EVENTS_PER_PERSON if days == 1 else events, 100)
    generate(home, days=days, people=people, events_per_day=events, seed=seed, start_date=first_day)
    generate_s = time.perf_counter() - started
    activate_home(home)

    started = time.perf_counter()
    from dagster import DagsterInstance

    from dagster_project.bench.event_log_meter import EventLogMeter
    from dagster_project.cli import run_partitions
    from dagster_project.definitions import defs  # noqa: F401  (load the code location before the clock starts)
    from dagster_project.tracking.store import MlflowStore
    from dagster_project.transform.project import dbt_cli_resource, home_dbt_target

    import_s = time.perf_counter() - started
    # A deployment parses the dbt project once for its home (the profile names the home's
    # warehouse), and `personas init` creates the MLflow store; daily runs then re-parse only
    # the files that read the partition range and write to an existing store.
    started = time.perf_counter()
    dbt_cli_resource().cli(["parse", "--quiet"], target_path=home_dbt_target(home)).wait()
    MlflowStore().activate()
    deploy_s = time.perf_counter() - started
    with TreeMemorySampler() as sampler, EventLogMeter().measuring() as event_log:
        run_started = time.time()
        result = run_partitions(home, first_day, DAY)
        run_ended = time.time()
    with DagsterInstance.get() as instance:
        # Days a gate blocked are left out of a follow-up run of the persona assets: its steps count too.
        windows = {f"{run_id}:{key}": window for run_id in result.run_ids
                   for key, window in step_windows(instance, run_id).items()}

    stages: dict[str, dict[str, float]] = {}
    for run_step, (start, end) in windows.items():
        stage = stages.setdefault(stage_of(run_step.split(":", 1)[1]), {"seconds": 0.0, "peak_rss_mb": 0.0})
        stage["seconds"] += end - start
        stage["peak_rss_mb"] = max(stage["peak_rss_mb"], sampler.peak_mb(start, end))
    identity_s = dbt_identity_seconds(home_dbt_target(home), run_started)
    if identity_s and "staging and marts (dbt build)" in stages:
        dbt_stage = stages["staging and marts (dbt build)"]
        dbt_stage["seconds"] -= identity_s
        stages["identity (dbt models)"] = {"seconds": identity_s, "peak_rss_mb": dbt_stage["peak_rss_mb"]}
    end_to_end_s = run_ended - run_started
    stages["run overhead (Dagster, outside steps)"] = {
        "seconds": end_to_end_s - sum(end - start for start, end in windows.values()),
        "peak_rss_mb": sampler.peak_mb(run_started, run_ended),
    }

    summary = {
        "events": events * days,
        "days": days,
        "events_per_day": events,
        "success": result.success,
        "generate_s": generate_s,
        "import_s": import_s,
        "deploy_s": deploy_s,
        "end_to_end_s": end_to_end_s,
        "events_per_s": events * days / end_to_end_s,
        "peak_rss_mb": sampler.peak_mb(),
        "memory_stage_s": stages.get("memories", {}).get("seconds", float("nan")),
        "stages": stages,
        "event_log": event_log.summary(),
    }
    return summary | (references(home, DAY) if days == 1 else {"duckdb_floor_s": None, "pandas_s": None})


def references(home: Path, day: date) -> dict:
    """The DuckDB floor and the pandas segmentation on the day's data, with the memories each found."""
    import duckdb

    from dagster_project.bench.references import pandas_segment, run_duckdb_floor
    from dagster_project.paths import landing_dir, warehouse_path

    started = time.perf_counter()
    floor_memories = run_duckdb_floor(landing_dir(home), day)
    floor_s = time.perf_counter() - started
    started = time.perf_counter()
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        frame = connection.execute(
            "select event_id, ts, person_id, category as intent, text, source from fct_events where event_date = ?", [day]
        ).df()
        our_memories = connection.execute(
            "select count(*) from intent_memories where event_date = ?", [day]
        ).fetchall()[0][0]
    pandas_memories = len(pandas_segment(frame))
    pandas_s = time.perf_counter() - started
    return {
        "duckdb_floor_s": floor_s,
        "pandas_s": pandas_s,
        "memories": {"ours": our_memories, "duckdb_floor": floor_memories, "pandas": pandas_memories},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--events", type=int, required=True, help="events a day")
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.home.resolve(), args.events, days=args.days)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
