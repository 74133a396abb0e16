"""The code location: every asset, check and resource of the persona platform."""

from dagster import Definitions, EnvVar

from dagster_project.drift.assets import persona_drift
from dagster_project.fairness.assets import persona_fairness
from dagster_project.ingest.assets import landing_specs, raw_landing_lines
from dagster_project.jobs import build_personas_job
from dagster_project.kpis.assets import persona_kpis
from dagster_project.operations.schedules import daily_schedule
from dagster_project.operations.sensors import crashed_run_sensor, landing_zone_sensor
from dagster_project.paths import activate_home
from dagster_project.personas.assets import intent_memories, persona_model, persona_utility
from dagster_project.quality.checks import persona_quality_checks, quality_checks
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.resources.event_log import lighten_event_log
from dagster_project.tracking.assets import champion_model
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.transform.assets import dbt_warehouse
from dagster_project.transform.project import dbt_cli_resource
from dagster_project.webhooks.assets import webhook_events

# Resolved when a run starts, so one process can serve several homes (tests, benchmarks).
activate_home()
lighten_event_log()  # no fsync per Dagster event (see resources/event_log.py)

defs = Definitions(
    assets=[*landing_specs, raw_landing_lines, dbt_warehouse, intent_memories, persona_model, persona_utility,
            persona_drift, persona_fairness, champion_model, persona_kpis, webhook_events],
    asset_checks=[*quality_checks, *persona_quality_checks],
    jobs=[build_personas_job],
    schedules=[daily_schedule],
    sensors=[landing_zone_sensor, crashed_run_sensor],
    resources={
        "dbt": dbt_cli_resource(),
        "duckdb": DuckDBResource(database=EnvVar("PERSONAS_WAREHOUSE")),
        "mlflow": MlflowTracking(),
    },
)
