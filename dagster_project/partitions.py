"""One partition per UTC event date, shared by every asset."""

import os
from datetime import date, timedelta

from dagster import AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition

DEFAULT_START_DATE = "2026-01-01"

daily_partitions = DailyPartitionsDefinition(
    start_date=os.environ.get("PERSONAS_START_DATE", DEFAULT_START_DATE), timezone="UTC"
)

# A backfill over many days runs as one run over the whole range: one dbt invocation,
# one DuckDB transaction per table, instead of a run per day queueing on the writer pool.
single_run_backfill = BackfillPolicy.single_run()


def partition_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """The inclusive [first, last] days of the partition range this step materialises."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
