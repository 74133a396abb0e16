"""Runs and backfills the Dagster UI counts as the code location's own, on one small home.

`personas backfill --wait` adds a real asset backfill and runs a `dagster-daemon` for it; then
`run_partitions` (what `personas run` and the demo call) runs a day in this process. A
`dagster-webserver` over the home is then asked, with the GraphQL queries the UI sends, for the
job's runs (its Runs tab filters on the job name and the `.dagster/repository` tag), for the
job's snapshot (re-execute warns unless the run's snapshot is the loaded job's) and for the
backfills (the Backfills tab).
"""

import os
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus

from browser_support import graphql, serving
from dagster_project.cli import main, run_partitions
from dagster_project.defs.operations.jobs import BUILD_JOB_NAME
from dagster_project.generator import generate
from dagster_project.operations.launching import REPOSITORY_NAME, WORKSPACE_FILE, location_origin, repository_label
from dagster_project.processes import free_port
from pipeline_helpers import using_home

START, LAST = date(2026, 10, 1), date(2026, 10, 2)
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")
RUNS_QUERY = """query JobRuns($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId jobName status pipelineSnapshotId parentPipelineSnapshotId
  repositoryOrigin { repositoryName repositoryLocationName }
} } } }"""
JOB_QUERY = """query Job($params: PipelineSelector!) {
  pipelineOrError(params: $params) { ... on Pipeline { pipelineSnapshotId } } }"""
BACKFILLS_QUERY = """{ partitionBackfillsOrError { ... on PartitionBackfills {
  results { id status numPartitions } } } }"""


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The home after `personas backfill --wait` of two days and a `run_partitions` of the last one."""
    with using_home(tmp_path_factory.mktemp("launch") / "home") as home:
        generate(home, days=2, people=200, events_per_day=800, seed=5, start_date=START, world="easy")
        assert main(["backfill", "--start", str(START), "--end", str(LAST), "--wait"]) == 0
        outcome = run_partitions(home, LAST, LAST)
        assert outcome.success
        yield home, outcome.run_id


def test_a_waited_backfill_is_a_daemon_executed_asset_backfill_that_materialised_every_day(launched):
    home, _ = launched
    with DagsterInstance.get() as instance:
        [backfill] = instance.get_backfills()
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
        assert backfill.is_asset_backfill
        runs = instance.get_runs(RunsFilter.for_backfill(backfill.backfill_id))
        assert runs and all(run.remote_job_origin is not None for run in runs)  # launched by the daemon
        days = {START.isoformat(), LAST.isoformat()}
        for key in ("fct_events", "personas", "champion_model", "persona_kpis"):
            assert days <= instance.get_materialized_partitions(AssetKey(key)), key


def test_a_personas_run_carries_the_location_origin_and_is_listed_under_the_job(launched):
    _, run_id = launched
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run.remote_job_origin.repository_origin.code_location_origin == location_origin()
        assert run.tags_for_storage()[".dagster/repository"] == repository_label() == f"{REPOSITORY_NAME}@personas"
        listed = instance.get_runs(RunsFilter(job_name=BUILD_JOB_NAME,
                                              tags={".dagster/repository": repository_label()}))
        assert run_id in {listed_run.run_id for listed_run in listed}


def test_the_ui_lists_the_run_under_the_job_re_executes_it_without_warning_and_lists_the_backfill(launched, browser):
    home, run_id = launched
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(WEBSERVER), "-w", str(WORKSPACE_FILE), "-h", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "PERSONAS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    with serving(command, home / "webserver.log", f"{url}/server_info", 90, env, cwd=WORKSPACE_FILE.parent):
        repository_tag = {"key": ".dagster/repository", "value": repository_label()}
        job_filter = {"pipelineName": BUILD_JOB_NAME, "tags": [repository_tag]}
        runs = graphql(url, RUNS_QUERY, {"filter": job_filter})["runsOrError"]["results"]
        [run] = [run for run in runs if run["runId"] == run_id]
        assert run["repositoryOrigin"] == {"repositoryName": REPOSITORY_NAME, "repositoryLocationName": "personas"}
        loaded = graphql(url, JOB_QUERY, {"params": {"pipelineName": BUILD_JOB_NAME, "repositoryName": REPOSITORY_NAME,
                                                      "repositoryLocationName": "personas"}})["pipelineOrError"]
        # The UI's re-execute button warns unless the run's (parent) snapshot is the loaded job's.
        assert (run["parentPipelineSnapshotId"] or run["pipelineSnapshotId"]) == loaded["pipelineSnapshotId"]
        backfills = graphql(url, BACKFILLS_QUERY)["partitionBackfillsOrError"]["results"]
        assert [(backfill["status"], backfill["numPartitions"]) for backfill in backfills] == [("COMPLETED_SUCCESS", 2)]

        # What a person sees: the run in the job's Runs tab, the backfill in the Backfills list.
        browser.get(f"{url}/server_info")
        browser.execute("localStorage.setItem('communityNux', JSON.stringify('1'));")
        browser.get(f"{url}/locations/{repository_label()}/jobs/{BUILD_JOB_NAME}/runs")
        browser.wait_until(lambda b: run_id[:8] in b.text(), 60, f"run {run_id[:8]} in the job's Runs tab")
        browser.get(f"{url}/overview/backfills")
        backfill_id = backfills[0]["id"]
        browser.wait_until(lambda b: backfill_id in b.text(), 60, f"backfill {backfill_id} in the Backfills list")
