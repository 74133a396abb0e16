"""The daily build: the newest complete day, every morning."""

from dagster import build_schedule_from_partitioned_job

from dagster_project.defs.operations.jobs import build_personas_job

daily_schedule = build_schedule_from_partitioned_job(build_personas_job, hour_of_day=2, minute_of_hour=0)
