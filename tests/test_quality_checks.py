"""Great Expectations gates as blocking checks over the real raw loader, dbt and DuckDB.

Two generated days, each materialised in its own run: the first clean (with an email
planted in a social comment), the second with a fifth of its web lines cut in half.
"""

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import AssetCheckEvaluation, AssetKey, EnvVar, MaterializeResult, asset, materialize

from dagster_project.generator import generate
from dagster_project.ingest.assets import landing_specs, raw_landing_lines
from dagster_project.partitions import daily_partitions, single_run_backfill
from dagster_project.paths import landing_dir, warehouse_path
from dagster_project.quality.checks import quality_checks
from dagster_project.quality.gx_runner import (
    EXPECTATIONS_DIR,
    QualityThresholds,
    build_data_docs,
    suite_parameters,
    validate_frame,
)
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.transform.assets import dbt_warehouse
from dagster_project.transform.project import dbt_cli_resource
from pipeline_helpers import using_home

START = date(2026, 10, 1)
CLEAN_DAY, CORRUPTED_DAY = START, START + timedelta(days=1)
PLANTED_EMAIL = "planted.person@example.org"
CORRUPTED_SHARE = 5  # every fifth web line is cut in half

REJECT_RATE_EXPECTATION = "expect_column_values_to_be_between(reject_rate)"
EMAIL_EXPECTATION = "expect_column_values_to_not_match_regex(text, email)"


@asset(deps=[AssetKey("fct_events")], partitions_def=daily_partitions, backfill_policy=single_run_backfill)
def downstream_of_fct_events() -> MaterializeResult:
    """Stands in for the memories and personas that the warehouse gate protects."""
    return MaterializeResult()


GATED_GRAPH = [*landing_specs, raw_landing_lines, dbt_warehouse, downstream_of_fct_events, *quality_checks]
RESOURCES = {"dbt": dbt_cli_resource(), "duckdb": DuckDBResource(database=EnvVar("PERSONAS_WAREHOUSE"))}


def run_day(day: date):
    return materialize(GATED_GRAPH, resources=RESOURCES, partition_key=day.isoformat(), raise_on_error=False)


def plant_email_in_a_comment(home) -> str:
    """Append an email to the first social comment of the clean day; returns its engagement id."""
    path = landing_dir(home) / "social" / "engagements" / f"{CLEAN_DAY}.jsonl"
    lines = path.read_bytes().splitlines()  # bytes: the generator plants invalid UTF-8 too
    for index, line in enumerate(lines):
        if line.startswith(b'{"engagement_id"') and b'"action":"comment"' in line:
            record = json.loads(line)
            record["text"] += f" write me at {PLANTED_EMAIL}"
            lines[index] = json.dumps(record).encode()
            path.write_bytes(b"\n".join(lines) + b"\n")
            return record["engagement_id"]
    raise AssertionError("no social comment to plant an email in")


def cut_web_lines_in_half(home) -> None:
    path = landing_dir(home) / "web" / "events" / f"{CORRUPTED_DAY}.jsonl"
    lines = path.read_bytes().splitlines()
    cut = [line[: len(line) // 2] if index % CORRUPTED_SHARE == 0 else line for index, line in enumerate(lines)]
    path.write_bytes(b"\n".join(cut) + b"\n")


def gx_evaluations(result) -> dict[str, AssetCheckEvaluation]:
    """The Great Expectations checks' results by table (dbt's own tests are checks too)."""
    return {evaluation.asset_key.to_user_string(): evaluation
            for evaluation in result.get_asset_check_evaluations() if evaluation.check_name.startswith("gx_")}


def materialized(result, key: str) -> bool:
    return any(event.asset_key == AssetKey(key) for event in result.get_asset_materialization_events())


def staged_social_day(home: Path, day: date) -> pd.DataFrame:
    """Read right after the day's run: staging views only hold the range dbt built last."""
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        return connection.execute("select * from stg_social__engagements where event_date = ?", [day]).df()


@dataclass(frozen=True)
class GatedRuns:
    home: Path
    planted_id: str
    clean_social: pd.DataFrame
    results: dict


@pytest.fixture(scope="module")
def gated_runs(tmp_path_factory) -> GatedRuns:
    with using_home(tmp_path_factory.mktemp("quality")) as home:
        generate(home, days=2, people=150, events_per_day=1000, seed=3, start_date=START)
        planted_id = plant_email_in_a_comment(home)
        cut_web_lines_in_half(home)
        results = {CLEAN_DAY: run_day(CLEAN_DAY)}
        clean_social = staged_social_day(home, CLEAN_DAY)
        results[CORRUPTED_DAY] = run_day(CORRUPTED_DAY)
        yield GatedRuns(home, planted_id, clean_social, results)


def expectations_in_suite(table: str) -> int:
    return len(json.loads((EXPECTATIONS_DIR / f"{table}.json").read_text())["expectations"])


def test_a_clean_day_passes_every_suite(gated_runs):
    result = gated_runs.results[CLEAN_DAY]
    assert result.success
    checks = gx_evaluations(result)
    assert len(checks) == len(quality_checks)
    for table, evaluation in checks.items():
        assert evaluation.passed, (table, evaluation.metadata)
        assert evaluation.partition == CLEAN_DAY.isoformat()
        assert evaluation.metadata["evaluated"].value == expectations_in_suite(table)
        assert evaluation.metadata["failed"].value == 0
        assert evaluation.metadata["failed_partitions"].value == "none"
    assert materialized(result, "downstream_of_fct_events")


def test_a_corrupted_day_fails_the_reject_rate_gate_and_blocks_downstream(gated_runs):
    result = gated_runs.results[CORRUPTED_DAY]
    assert not result.success
    checks = gx_evaluations(result)
    audit = checks["audit_record_counts"]
    assert not audit.passed
    assert audit.metadata["failed_expectations"].value == [REJECT_RATE_EXPECTATION]
    assert audit.partition == audit.metadata["failed_partitions"].value == CORRUPTED_DAY.isoformat()
    [rates] = audit.metadata["unexpected_examples"].value.values()
    assert float(rates[0]) > QualityThresholds().max_reject_rate
    # The broken lines were rejected, so what reached staging is fine...
    assert all(checks[f"stg_{name}"].passed for name in ("web__events", "social__engagements", "iot__readings"))
    # ...but the warehouse gate never ran, and nothing downstream of fct_events was built.
    assert "fct_events" not in checks
    assert materialized(result, "fct_events")
    assert not materialized(result, "downstream_of_fct_events")


def test_staging_masks_a_planted_email_and_an_unmasked_frame_fails_the_pii_expectation(gated_runs):
    assert gx_evaluations(gated_runs.results[CLEAN_DAY])["stg_social__engagements"].passed
    with duckdb.connect(str(warehouse_path(gated_runs.home)), read_only=True) as connection:
        raw_text = connection.execute(
            """select doc->>'$.text'
               from (select try_cast(raw as json) as doc from raw.social__engagements where event_date = ?)
               where doc->>'$.engagement_id' = ?""",
            [CLEAN_DAY, gated_runs.planted_id],
        ).fetchall()[0][0]
    frame = gated_runs.clean_social.copy()
    planted = frame["engagement_id"] == gated_runs.planted_id
    [masked_text] = frame.loc[planted, "text"]
    assert "<email>" in masked_text and PLANTED_EMAIL not in masked_text
    assert PLANTED_EMAIL in raw_text

    parameters = suite_parameters(CLEAN_DAY, None, QualityThresholds())
    assert validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home).success
    frame.loc[planted, "text"] = raw_text
    outcome = validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home)
    assert not outcome.success
    [failure] = outcome.failed_expectations
    assert failure.name == EMAIL_EXPECTATION
    assert any(PLANTED_EMAIL in example for example in failure.unexpected)


def test_timestamps_outside_the_day_and_a_jump_in_row_count_fail_their_expectations(gated_runs):
    frame = gated_runs.clean_social.copy()
    frame.loc[frame.index[:3], "ts"] += pd.Timedelta(days=1)
    far_more_rows_yesterday = 3 * len(frame)
    parameters = suite_parameters(CLEAN_DAY, far_more_rows_yesterday, QualityThresholds())
    outcome = validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home)
    assert [failure.name for failure in outcome.failed_expectations] == [
        "expect_column_values_to_be_between(ts)", "expect_table_row_count_to_be_between()",
    ]
    assert outcome.failed_expectations[0].unexpected[0].startswith(str(CORRUPTED_DAY))


def test_data_docs_are_built_under_the_home(gated_runs):
    index = build_data_docs(gated_runs.home)
    assert index.is_file()
    assert index.is_relative_to(gated_runs.home / "gx")
    assert "fct_events" in index.read_text()
