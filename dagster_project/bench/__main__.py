"""`make bench`: materialise one generated day of 1M events (or `--events N`, `--scale 10m`) and
histories of many small days (`--histories`, default 200 days of 500 events and 30 days of 30,000),
and report.

Every shape runs in its own process and PERSONAS_HOME under `--workdir`; the histories and
the main size run `--repeat` times, since a shared 2-core machine varies by ±20% from run to
run. Writes BENCHMARKS.md (machine, the median run's per-stage wall time and peak memory and
its references, every repeat, the sweep, the histories and the fixed cost per day) and prints
each history's median run, then the main size's, as one JSON object a line: events, days,
end_to_end_s, peak_rss_mb, memory_stage_s, duckdb_floor_s, pandas_s (null for histories), per_day_fixed_s.
`--histories-only` runs the histories alone and rewrites only BENCHMARKS.md's many-small-days section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dagster_project.bench.report import machine_description, markdown_report, with_histories_section

SCALES = {"1m": 1_000_000, "10m": 10_000_000}
SUMMARY_KEYS = ("events", "days", "end_to_end_s", "peak_rss_mb", "memory_stage_s", "duckdb_floor_s", "pandas_s")
DEFAULT_HISTORIES = "200x500,30x30000"
REPO = Path(__file__).resolve().parents[2]


def run_size(events: int, workdir: Path, days: int = 1) -> dict:
    """Measure `days` days of `events` events in a fresh interpreter and home; its last stdout line is the result."""
    home = workdir / f"home-{days}x{events}"
    shutil.rmtree(home, ignore_errors=True)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster_project.bench.measure", "--home", str(home), "--events", str(events),
         "--days", str(days)],
        capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"benchmark of {days} x {events} events failed (exit {completed.returncode})")
    shutil.rmtree(home, ignore_errors=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    # Every run's full measurement stays beside the homes, for a look at what the report leaves out.
    (workdir / f"{days}x{events}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(json.dumps(result, indent=1))
    return result


def median_run(runs: list[dict]) -> dict:
    """The run of median end-to-end time (the slower middle one of an even count): its ratios stay those of one run."""
    return sorted(runs, key=lambda run: run["end_to_end_s"])[len(runs) // 2]


def parse_histories(text: str) -> list[tuple[int, int]]:
    """"200x500,30x30000" -> [(200, 500), (30, 30000)]: days x events a day."""
    shapes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        days, _, events = item.partition("x")
        if not (days.isdigit() and events.isdigit() and int(days) > 1):
            raise ValueError(f"--histories {item!r}: expected DAYSxEVENTS with more than one day, e.g. 200x500")
        shapes.append((int(days), int(events)))
    return shapes


def per_day_fixed_seconds(runs: list[dict]) -> float | None:
    """The cost of a day whatever its data: the `days` term of end-to-end time fitted as a + b·days + c·events.

    None unless the runs span at least three shapes that are not on one line, and None when a fitted term is
    negative: then the times do not follow that model (a history of large days refits each day's events in
    up to 30 windows, so its cost grows with events times window days) and its `days` term means nothing.
    """
    shapes = np.array([[1.0, run["days"], run["events"]] for run in runs])
    if np.linalg.matrix_rank(shapes) < 3:
        return None
    coefficients, *_ = np.linalg.lstsq(shapes, np.array([run["end_to_end_s"] for run in runs]), rcond=None)
    return float(coefficients[1]) if (coefficients >= 0).all() else None


def run_histories(histories: list[tuple[int, int]], repeat: int, workdir: Path) -> dict[tuple[int, int], list[dict]]:
    """Every run of each many-small-days shape."""
    history_runs = {}
    for days, per_day in histories:
        runs = []
        for attempt in range(1, repeat + 1):
            print(f"benchmarking {days} days of {per_day:,} events, run {attempt} of {repeat} ...",
                  file=sys.stderr, flush=True)
            runs.append(run_size(per_day, workdir, days))
        history_runs[(days, per_day)] = runs
    return history_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=SCALES["1m"], help="events in the benchmarked day (default 1,000,000)")
    parser.add_argument("--scale", choices=sorted(SCALES), help="shorthand for --events: 1m or 10m")
    parser.add_argument("--sizes", default="", help="comma-separated extra sizes for the growth sweep, e.g. 100000,1000000")
    parser.add_argument("--histories", default=DEFAULT_HISTORIES,
                        help="many-small-days shapes, DAYSxEVENTS a day, comma-separated "
                             f"(default {DEFAULT_HISTORIES}; '' for none)")
    parser.add_argument("--histories-only", action="store_true",
                        help="run only the --histories shapes and replace the many-small-days section of --output, "
                             "keeping its other sections")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the main size and of each history; the report details the median run")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "personas-bench")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        histories = parse_histories(args.histories)
    except ValueError as error:
        parser.error(str(error))
    if args.histories_only and not (histories and args.output.exists()):
        parser.error("--histories-only needs --histories and an existing --output to update")

    events = SCALES[args.scale] if args.scale else args.events
    sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()} - {events})
    args.workdir.mkdir(parents=True, exist_ok=True)
    before = machine_description()
    if args.histories_only:
        history_runs = run_histories(histories, args.repeat, args.workdir)
        history_medians = {shape: median_run(runs) for shape, runs in history_runs.items()}
        fixed_s = per_day_fixed_seconds(list(history_medians.values()))
        args.output.write_text(with_histories_section(args.output.read_text(), history_runs, fixed_s, before))
        print(f"updated the many-small-days section of {args.output}", file=sys.stderr)
        for run in history_medians.values():
            print(json.dumps({key: run[key] for key in SUMMARY_KEYS} | {"per_day_fixed_s": fixed_s}))
        return 0
    results = {}
    for size in sizes:
        print(f"benchmarking {size:,} events ...", file=sys.stderr, flush=True)
        results[size] = run_size(size, args.workdir)
    history_runs = run_histories(histories, args.repeat, args.workdir)
    repeats = []
    for attempt in range(1, args.repeat + 1):
        print(f"benchmarking {events:,} events, run {attempt} of {args.repeat} ...", file=sys.stderr, flush=True)
        repeats.append(run_size(events, args.workdir))
    results[events] = median_run(repeats)
    history_medians = {shape: median_run(runs) for shape, runs in history_runs.items()}
    fixed_s = per_day_fixed_seconds([results[events], *history_medians.values()])
    args.output.write_text(markdown_report(results, events, repeats, before, machine_description(),
                                           history_runs, fixed_s))
    print(f"wrote {args.output}", file=sys.stderr)
    for run in [*history_medians.values(), results[events]]:
        print(json.dumps({key: run[key] for key in SUMMARY_KEYS} | {"per_day_fixed_s": fixed_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
