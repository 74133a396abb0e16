"""BENCHMARKS.md: the machine, the main size's stages and references, and the growth sweep."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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


# The performance goals for a 1M-event day (README, Performance), checked on every run of that size.
TARGET_SIZE = 1_000_000
TARGETS = (
    ("end to end ≤ 60 s", lambda run: run["end_to_end_s"] <= 60),
    ("peak < 4 GiB", lambda run: run["peak_rss_mb"] < 4096),
    ("memories ≤ 3x the floor", lambda run: run["memory_stage_s"] <= 3 * run["duckdb_floor_s"]),
    ("memories ≥ 5x faster than pandas", lambda run: run["pandas_s"] >= 5 * run["memory_stage_s"]),
)


def _repeats_section(repeats: list[dict], main: dict, main_size: int) -> list[str]:
    """Every run of the main size, the targets each met, and which one the report details."""
    lines = [
        "## Every run of the main size",
        "",
        "| run | end to end (s) | peak RSS (MiB) | memories step (s) | DuckDB floor (s) | pandas (s) "
        "| vs floor | vs pandas | targets met |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    has_targets = main_size == TARGET_SIZE
    for number, run in enumerate(repeats, start=1):
        met = f"{sum(check(run) for _, check in TARGETS)} of {len(TARGETS)}" if has_targets else "-"
        marker = " (detailed above)" if run is main else ""
        lines.append(
            f"| {number}{marker} | {run['end_to_end_s']:.1f} | {run['peak_rss_mb']:,.0f} | {run['memory_stage_s']:.1f} "
            f"| {run['duckdb_floor_s']:.1f} | {run['pandas_s']:.1f} "
            f"| {_ratio(run['memory_stage_s'], run['duckdb_floor_s'])} "
            f"| {_ratio(run['pandas_s'], run['memory_stage_s'])} | {met} |"
        )
    lines.append("")
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


def _histories_section(history_runs: dict[tuple[int, int], list[dict]], fixed_s: float | None) -> list[str]:
    """Each many-small-days shape's median run by stage, every run's end-to-end time, and the fixed cost per day."""
    lines = [
        "## Many small days",
        "",
        "A history of small days, as a new user's log is: one `personas run` over every day, so what a day",
        "costs whatever its data (Dagster's events per asset and day, gate steps, dbt start-up) shows here.",
        "Stage times of the median run, in seconds:",
        "",
        "| days x events a day | end to end | per day | " + " | ".join(name for name, _ in HISTORY_STAGES)
        + " | peak RSS (MiB) | every run (s) |",
        "|---|---:|---:|" + "---:|" * len(HISTORY_STAGES) + "---:|---|",
    ]
    for (days, per_day), runs in history_runs.items():
        run = sorted(runs, key=lambda item: item["end_to_end_s"])[len(runs) // 2]
        stages = "".join(
            f" {run['stages'][stage]['seconds']:.1f} |" if stage in run["stages"] else " - |" for _, stage in HISTORY_STAGES
        )
        every_run = " / ".join(f"{item['end_to_end_s']:.0f}" for item in runs)
        lines.append(
            f"| {days} x {per_day:,} ({run['events']:,} events){'' if run['success'] else ' FAILED'} "
            f"| {run['end_to_end_s']:.1f} | {run['end_to_end_s'] / days:.2f} |{stages} {run['peak_rss_mb']:,.0f} "
            f"| {every_run} |"
        )
    lines.append("")
    if fixed_s is not None:
        lines += [
            f"Fixed cost per day: **{fixed_s:.2f} s** (the days term of a + b·days + c·events fitted to the median",
            "runs of every shape, the 1M-event day included).",
            "",
        ]
    return lines


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
        "| stage | wall time (s) | share | peak RSS (MiB) |",
        "|---|---:|---:|---:|",
    ]
    for stage, numbers in main["stages"].items():
        lines.append(
            f"| {stage} | {numbers['seconds']:.1f} | {numbers['seconds'] / main['end_to_end_s']:.0%} "
            f"| {numbers['peak_rss_mb']:,.0f} |"
        )
    lines += [
        f"| **end to end** | **{main['end_to_end_s']:.1f}** | 100% | **{main['peak_rss_mb']:,.0f}** |",
        "",
        "`identity (dbt models)` is the dbt time of the identity models inside the dbt build step, whose",
        "peak memory it shares; the dbt build line is the rest of that step (staging, marts, dbt tests, startup).",
        "",
        "## Memory stage against the references (same run, same day)",
        "",
        "| implementation | wall time (s) | memories | our memory stage vs it |",
        "|---|---:|---:|---:|",
        f"| our `intent_memories` step (read fct_events, intent model, families, segmentation, summaries, write) "
        f"| {main['memory_stage_s']:.1f} | {main['memories']['ours']:,} | - |",
        f"| DuckDB floor: `duckdb_floor.sql`, staging from the landing files + segmentation | {main['duckdb_floor_s']:.1f} "
        f"| {main['memories']['duckdb_floor']:,} | {_ratio(main['memory_stage_s'], main['duckdb_floor_s'])} |",
        f"| pandas segmentation (read fct_events + segment) | {main['pandas_s']:.1f} | {main['memories']['pandas']:,} "
        f"| {_ratio(main['pandas_s'], main['memory_stage_s'])} faster |",
        "",
        "The references take the category as the intent (no text model, no intent families, no person",
        "stitching in the floor), so their memory counts differ from ours; on the same events with the",
        "same intents all three give the same memories (tests/test_bench_references.py).",
        "",
        *_repeats_section(repeats, main, main_size),
        "## Growth with the day's size",
        "",
        "| events | end to end (s) | events/s | peak RSS (MiB) | memories step (s) | clustering and labelling (s) "
        "| dbt build (s) | GX gates (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sorted(results):
        result = results[size]
        seconds = {stage: f"{numbers['seconds']:.1f}" for stage, numbers in result["stages"].items()}
        lines.append(
            f"| {size:,} | {result['end_to_end_s']:.1f} | {result['events_per_s']:,.0f} | {result['peak_rss_mb']:,.0f} "
            f"| {seconds.get('memories', '-')} | {seconds.get('clustering and labelling', '-')} "
            f"| {seconds.get('staging and marts (dbt build)', '-')} | {seconds.get('checks (GX gates)', '-')} |"
        )
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
