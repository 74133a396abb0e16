"""One partition per UTC event date, shared by every asset, from the home's first data day on.

The definition is built when the code location loads: every `personas` command, and every run
the UI or the daemon launches (each in a process of its own), so landing older data and starting
a new command is enough to make its days runnable; an open UI shows them after *Reload definitions*.
"""

import os
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition

from dagster_project.paths import landing_dir, personas_home, recorded_first_data_day

DEFAULT_START_DATE = "2026-01-01"


def _earliest_landing_day(home: Path) -> date | None:
    """The earliest `landing/<source>/<entity>/<YYYY-MM-DD>.<ext>` file: homes whose sources write
    the landing zone themselves, or built before the first day was recorded."""
    days = []
    for path in landing_dir(home).glob("*/*/*.*"):
        try:
            days.append(date.fromisoformat(path.name.split(".")[0]))
        except ValueError:
            continue  # not a day file (a file being written starts with a dot)
    return min(days, default=None)


def first_partition_day(home: Path) -> date:
    """The day recorded by `generate`/`import`, else the earliest landing file, else (a home
    without data) `PERSONAS_START_DATE`, default 2026-01-01."""
    return (recorded_first_data_day(home) or _earliest_landing_day(home)
            or date.fromisoformat(os.environ.get("PERSONAS_START_DATE", DEFAULT_START_DATE)))


daily_partitions = DailyPartitionsDefinition(start_date=first_partition_day(personas_home()).isoformat(), timezone="UTC")

# A backfill over many days runs as one run over the whole range: one dbt invocation,
# one DuckDB transaction per table, instead of a run per day queueing on the writer pool.
single_run_backfill = BackfillPolicy.single_run()


def partition_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """The inclusive [first, last] days of the partition range this step materialises."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
