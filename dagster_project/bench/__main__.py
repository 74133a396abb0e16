"""`make bench`: materialise one generated day of 1M events (or `--events N`, `--scale 10m`) and report.

Every size runs in its own process and PERSONAS_HOME under `--workdir`; the main size comes
last and runs `--repeat` times, since a shared 2-core machine varies by ±20% from run to run.
Writes BENCHMARKS.md (machine, the median run's per-stage wall time and peak memory and its
references, every repeat, the sweep) and prints the median run as one JSON object on its last
line: events, end_to_end_s, peak_rss_mb, memory_stage_s, duckdb_floor_s, pandas_s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dagster_project.bench.report import machine_description, markdown_report

SCALES = {"1m": 1_000_000, "10m": 10_000_000}
SUMMARY_KEYS = ("events", "end_to_end_s", "peak_rss_mb", "memory_stage_s", "duckdb_floor_s", "pandas_s")
REPO = Path(__file__).resolve().parents[2]


def run_size(events: int, workdir: Path) -> dict:
    """Measure one size in a fresh interpreter and home; its last stdout line is the result."""
    home = workdir / f"home-{events}"
    shutil.rmtree(home, ignore_errors=True)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster_project.bench.measure", "--home", str(home), "--events", str(events)],
        capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"benchmark of {events} events failed (exit {completed.returncode})")
    shutil.rmtree(home, ignore_errors=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def median_run(runs: list[dict]) -> dict:
    """The run of median end-to-end time (the slower middle one of an even count): its ratios stay those of one run."""
    return sorted(runs, key=lambda run: run["end_to_end_s"])[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=SCALES["1m"], help="events in the benchmarked day (default 1,000,000)")
    parser.add_argument("--scale", choices=sorted(SCALES), help="shorthand for --events: 1m or 10m")
    parser.add_argument("--sizes", default="", help="comma-separated extra sizes for the growth sweep, e.g. 100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the main size; the report details the median run")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "personas-bench")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    events = SCALES[args.scale] if args.scale else args.events
    sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()} - {events})
    args.workdir.mkdir(parents=True, exist_ok=True)
    before = machine_description()
    results = {}
    for size in sizes:
        print(f"benchmarking {size:,} events ...", file=sys.stderr, flush=True)
        results[size] = run_size(size, args.workdir)
    repeats = []
    for attempt in range(1, args.repeat + 1):
        print(f"benchmarking {events:,} events, run {attempt} of {args.repeat} ...", file=sys.stderr, flush=True)
        repeats.append(run_size(events, args.workdir))
    results[events] = median_run(repeats)
    args.output.write_text(markdown_report(results, events, repeats, before, machine_description()))
    print(f"wrote {args.output}", file=sys.stderr)
    print(json.dumps({key: results[events][key] for key in SUMMARY_KEYS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
