"""BENCHMARKS.md: the machine, the main size's stages and references, and the growth sweep."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from dagster_project.markdown import markdown_table

PACKAGES = (
    "dagster", "dbt-core", "dbt-duckdb", "duckdb", "polars", "pandas", "scikit-learn", "great-expectations", "mlflow",
)


def _meminfo_gib(field: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def machine_description() -> dict:
    """What the numbers were measured on, including how busy the machine was."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    threads_per_core = next(
        (line.split(":")[1].strip() for line in lscpu.splitlines() if "Thread(s) per core" in line), "?"
    )
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "threads_per_core": threads_per_core,
        "memory_gib": round(_meminfo_gib("MemTotal"), 1),
        "available_gib": round(_meminfo_gib("MemAvailable"), 1),
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "python": platform.python_version(),
        "os": platform.platform(),
        "packages": {name: _package_version(name) for name in PACKAGES},
    }


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "-"


# The performance goals for a 1M-event day, checked on every run of that size: issue #19's, which replaced the
# first ones (60 s, 4 GiB, 3x the floor, 5x pandas; docs/performance.md).
TARGET_SIZE = 1_000_000
TARGETS = (
    ("end to end ≤ 30 s", lambda run: run["end_to_end_s"] <= 30),
    ("peak ≤ 2 GiB", lambda run: run["peak_rss_mb"] <= 2048),
    ("memories ≤ 1.5x the floor", lambda run: run["memory_stage_s"] <= 1.5 * run["duckdb_floor_s"]),
    ("memories ≥ 8x faster than pandas", lambda run: run["pandas_s"] >= 8 * run["memory_stage_s"]),
)


def _repeats_section(repeats: list[dict], main: dict, main_size: int) -> list[str]:
    """Every run of the main size, the targets each met, and which one the report details."""
    has_targets = main_size == TARGET_SIZE
    table = markdown_table(
        ["run", "end to end (s)", "peak RSS (MiB)", "memories step (s)", "DuckDB floor (s)", "pandas (s)", "vs floor",
         "vs pandas", "targets met"],
        [
            [f"{number}{' (detailed above)' if run is main else ''}", f"{run['end_to_end_s']:.1f}",
             f"{run['peak_rss_mb']:,.0f}", f"{run['memory_stage_s']:.1f}", f"{run['duckdb_floor_s']:.1f}",
             f"{run['pandas_s']:.1f}", _ratio(run["memory_stage_s"], run["duckdb_floor_s"]),
             _ratio(run["pandas_s"], run["memory_stage_s"]),
             f"{sum(check(run) for _, check in TARGETS)} of {len(TARGETS)}" if has_targets else "-"]
            for number, run in enumerate(repeats, start=1)
        ],
        align="rrrrrrrrl",
    )
    lines = ["## Every run of the main size", "", table, ""]
    if has_targets:
        lines += ["Targets: " + "; ".join(
            f"{name}: {sum(check(run) for run in repeats)} of {len(repeats)} runs" for name, check in TARGETS
        ) + ".", ""]
    return lines


HISTORY_STAGES = (
    ("raw", "landing to raw lines"),
    ("dbt", "staging and marts (dbt build)"),
    ("identity", "identity (dbt models)"),
    ("gates", "checks (GX gates)"),
    ("memories", "memories"),
    ("personas", "clustering and labelling"),
    ("utility etc.", "utility, drift, champion"),
    ("Dagster", "run overhead (Dagster, outside steps)"),
)


HISTORIES_HEADING = "## Many small days"


def _event_log_cells(run: dict, days: int) -> list[str]:
    """Dagster runs (the first, then one per stretch between blocked days), seconds spent storing Dagster's
    events and events stored per day; '-' for a run measured without the event log meter."""
    event_log = run.get("event_log")
    if not event_log:
        return ["-", "-", "-"]
    return [str(event_log["by_type"].get("PIPELINE_START", "-")), f"{event_log['seconds']:.1f}",
            f"{event_log['events'] / days:,.0f}"]


def _growth_per_day(medians: dict[tuple[int, int], dict]) -> list[str]:
    """What one more day adds, between shapes of the same events a day: the fixed cost plus that day's data."""
    lines = []
    for (days, per_day), run in medians.items():
        longer = [(other_days, other) for (other_days, other_per_day), other in medians.items()
                  if other_per_day == per_day and other_days > days]
        for other_days, other in longer:
            added = (other["end_to_end_s"] - run["end_to_end_s"]) / (other_days - days)
            lines.append(f"- {days} → {other_days} days of {per_day:,} events: **{added:.2f} s per added day**")
    return lines


def _histories_section(history_runs: dict[tuple[int, int], list[dict]], fixed_s: float | None,
                       fitted_over: str = "the median runs of every shape, the 1M-event day included",
                       shapes_fitted: int | None = None) -> list[str]:
    """Each many-small-days shape's median run by stage, every run's end-to-end time, and the fixed cost per day
    (`shapes_fitted`: how many shapes it was fitted to, by default the histories and the 1M-event day)."""
    lines = [
        HISTORIES_HEADING,
        "",
        "A history of small days, as a new user's log is: one `personas run` over every day, so what a day",
        "costs whatever its data (Dagster's events per asset and day, gate steps, dbt start-up) shows here.",
        "Stage times of the median run, in seconds; `runs` counts the first run and the persona reruns",
        "around days a gate blocked, `event log` is the time spent storing Dagster's events (inside the",
        "stages, not beside them) and `events/day` how many it stored per day:",
        "",
    ]
    rows, medians = [], {}
    for (days, per_day), runs in history_runs.items():
        run = medians[(days, per_day)] = sorted(runs, key=lambda item: item["end_to_end_s"])[len(runs) // 2]
        rows.append([
            f"{days} x {per_day:,} ({run['events']:,} events){'' if run['success'] else ' FAILED'}",
            f"{run['end_to_end_s']:.1f}", f"{run['end_to_end_s'] / days:.2f}",
            *(f"{run['stages'][stage]['seconds']:.1f}" if stage in run["stages"] else "-" for _, stage in HISTORY_STAGES),
            *_event_log_cells(run, days),
            f"{run['peak_rss_mb']:,.0f}", " / ".join(f"{item['end_to_end_s']:.0f}" for item in runs),
        ])
    header = ["days x events a day", "end to end", "per day", *(name for name, _ in HISTORY_STAGES), "runs",
              "event log", "events/day", "peak RSS (MiB)", "every run (s)"]
    lines += [markdown_table(header, rows, align="l" + "r" * (len(header) - 2) + "l"), ""]
    growth = _growth_per_day(medians)
    if growth:
        lines += ["Growth with the number of days (median runs):", "", *growth, ""]
    if fixed_s is not None:
        lines += [
            f"Fixed cost per day: **{fixed_s:.2f} s** (the days term of a + b·days + c·events fitted to {fitted_over}).",
            "",
        ]
    elif (len(medians) + 1 if shapes_fitted is None else shapes_fitted) >= 3:
        lines += [
            f"Fixed cost per day: not fitted. a + b·days + c·events cannot be fitted to {fitted_over}: their "
            "days and events a day do not span three independent shapes, or the fit has a negative term (then "
            "these times do not grow linearly in days and events: a day's fit reads its whole window of up to 30 "
            "days, so a history of large days costs its events times its window). The `per day` column is each "
            "shape's whole time per day.",
            "",
        ]
    return lines


def with_histories_section(report: str, history_runs: dict[tuple[int, int], list[dict]], fixed_s: float | None,
                           machine: dict) -> str:
    """`report` with its many-small-days section (the last one) replaced by these runs' (`--histories-only`)."""
    kept = report.split(f"\n{HISTORIES_HEADING}", 1)[0].rstrip("\n")
    section = _histories_section(history_runs, fixed_s, fitted_over="the median runs of these shapes",
                                 shapes_fitted=len(history_runs))
    section[2:2] = [f"Measured by `python -m dagster_project.bench --histories-only` on {machine['at']}, load average "
                    f"(1, 5, 15 min) {machine['load_average']} at the start; the sections above are from another run.",
                    ""]
    return kept + "\n\n" + "\n".join(section) + "\n"


def markdown_report(
    results: dict[int, dict],
    main_size: int,
    repeats: list[dict],
    before: dict,
    after: dict,
    history_runs: dict[tuple[int, int], list[dict]] | None = None,
    fixed_s: float | None = None,
) -> str:
    """`results`: one run per size (for the main size, the run to detail); `repeats`: every run of the main size;
    `history_runs`: every run of each many-small-days shape (days, events a day); `fixed_s`: the fitted cost per day."""
    main = results[main_size]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m dagster_project.bench`); rerun it to refresh. One generated",
        "day (seed 7, one person per 5 events) is materialised end to end by `personas run` in a fresh",
        "PERSONAS_HOME: raw lines, `dbt build` with its tests, the 13 GX gates, memories, personas,",
        "utility, drift and the champion model. The machine is shared and its speed drifts by ±20% from",
        f"run to run, so the main size ran {len(repeats)} time(s): the sections below detail the median run",
        "(every ratio is from that one run) and the last sections list every run.",
        "",
        "## Machine",
        "",
        f"- {before['cpu']}, {before['cpus']} logical CPUs ({before['threads_per_core']} thread(s) per core), "
        f"{before['memory_gib']} GiB RAM ({before['available_gib']} GiB available at start)",
        f"- {before['os']}, Python {before['python']}",
        f"- load average (1, 5, 15 min): {before['load_average']} at start ({before['at']}), "
        f"{after['load_average']} at the end ({after['at']})",
        "- " + ", ".join(f"{name} {value}" for name, value in before["packages"].items()),
        "",
        f"## {main_size:,} events in one day",
        "",
        f"End to end **{main['end_to_end_s']:.1f} s** ({main['events_per_s']:,.0f} events/s, "
        f"run {'succeeded' if main['success'] else 'FAILED'}), peak memory "
        f"**{main['peak_rss_mb']:,.0f} MiB** (RSS of the process and its dbt subprocess, sampled every 0.1 s). "
        f"Not included: generating the day ({main['generate_s']:.1f} s), importing the code location "
        f"({main['import_s']:.1f} s) and the deployment's set-up of the new home: one `dbt parse` and "
        f"the MLflow store's tables ({main['deploy_s']:.1f} s).",
        "",
        markdown_table(
            ["stage", "wall time (s)", "share", "peak RSS (MiB)"],
            [
                *([stage, f"{numbers['seconds']:.1f}", f"{numbers['seconds'] / main['end_to_end_s']:.0%}",
                   f"{numbers['peak_rss_mb']:,.0f}"] for stage, numbers in main["stages"].items()),
                ["**end to end**", f"**{main['end_to_end_s']:.1f}**", "100%", f"**{main['peak_rss_mb']:,.0f}**"],
            ],
            align="lrrr",
        ),
        "",
        "`identity (dbt models)` is the dbt time of the identity models inside the dbt build step, whose",
        "peak memory it shares; the dbt build line is the rest of that step (staging, marts, dbt tests, startup).",
        "",
        "## Memory stage against the references (same run, same day)",
        "",
        markdown_table(
            ["implementation", "wall time (s)", "memories", "our memory stage vs it"],
            [
                ["our `intent_memories` step (read fct_events, intent model, families, segmentation, summaries, write)",
                 f"{main['memory_stage_s']:.1f}", f"{main['memories']['ours']:,}", "-"],
                ["DuckDB floor: `duckdb_floor.sql`, staging from the landing files + segmentation",
                 f"{main['duckdb_floor_s']:.1f}", f"{main['memories']['duckdb_floor']:,}",
                 _ratio(main["memory_stage_s"], main["duckdb_floor_s"])],
                ["pandas segmentation (read fct_events + segment)", f"{main['pandas_s']:.1f}",
                 f"{main['memories']['pandas']:,}", f"{_ratio(main['pandas_s'], main['memory_stage_s'])} faster"],
            ],
            align="lrrr",
        ),
        "",
        "The references take the category as the intent (no text model, no intent families, no person",
        "stitching in the floor), so their memory counts differ from ours; on the same events with the",
        "same intents all three give the same memories (tests/test_bench_references.py).",
        "",
        *_repeats_section(repeats, main, main_size),
        "## Growth with the day's size",
        "",
    ]
    growth_stages = ("memories", "clustering and labelling", "staging and marts (dbt build)", "checks (GX gates)")
    lines.append(markdown_table(
        ["events", "end to end (s)", "events/s", "peak RSS (MiB)", "memories step (s)", "clustering and labelling (s)",
         "dbt build (s)", "GX gates (s)"],
        [
            [f"{size:,}", f"{result['end_to_end_s']:.1f}", f"{result['events_per_s']:,.0f}",
             f"{result['peak_rss_mb']:,.0f}",
             *(f"{result['stages'][stage]['seconds']:.1f}" if stage in result["stages"] else "-"
               for stage in growth_stages)]
            for size, result in sorted(results.items())
        ],
        align="r" * 8,
    ))
    if len(results) > 1:
        smallest, largest = min(results), max(results)
        growth = results[largest]["end_to_end_s"] / results[smallest]["end_to_end_s"]
        lines += [
            "",
            f"From {smallest:,} to {largest:,} events ({largest / smallest:.0f}x) the end-to-end time grew {growth:.1f}x.",
        ]
    if history_runs:
        lines += ["", *_histories_section(history_runs, fixed_s)]
    return "\n".join(lines) + "\n"
