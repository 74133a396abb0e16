"""Great Expectations gates as blocking checks over the real raw loader, dbt and DuckDB.

Two generated days, each materialised in its own run: the first clean (with an email
planted in a social comment), the second with a fifth of its web lines cut in half.
"""

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    EnvVar,
    MaterializeResult,
    asset,
    materialize,
)

from dagster_project.defs.ingest.assets import landing_specs, raw_landing_lines
from dagster_project.defs.quality.checks import quality_checks
from dagster_project.defs.transform.assets import dbt_warehouse
from dagster_project.generator import generate
from dagster_project.partitions import daily_partitions, single_run_backfill
from dagster_project.paths import landing_dir, warehouse_path
from dagster_project.quality.gx_runner import EXPECTATIONS_DIR, build_data_docs, suite_parameters, validate_frame
from dagster_project.quality.thresholds import QualityThresholds
from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.summary import gate_verdicts, rerun_commands
from dagster_project.transform.project import dbt_cli_resource
from pipeline_helpers import using_home

START = date(2026, 10, 1)
CLEAN_DAY, CORRUPTED_DAY = START, START + timedelta(days=1)
PLANTED_EMAIL = "planted.person@example.org"
CORRUPTED_SHARE = 5  # every fifth web line is cut in half

REJECT_RATE_EXPECTATION = "expect_column_pair_values_a_to_be_greater_than_b(reject_rate_limit, reject_rate)"
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
        generate(home, days=2, people=150, events_per_day=1000, seed=3, start_date=START, world="easy")
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
    limit, rate = (float(part.split("=")[1]) for part in rates[0].split(", "))
    assert rate > limit == QualityThresholds().max_reject_rate
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

    parameters = suite_parameters(CLEAN_DAY, None, QualityThresholds(), sparse=False)
    assert validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home).success
    frame.loc[planted, "text"] = raw_text
    outcome = validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home)
    assert not outcome.success
    [failure] = outcome.failed_expectations
    assert failure.name == EMAIL_EXPECTATION
    assert any(PLANTED_EMAIL in example for example in failure.unexpected)


def test_timestamps_outside_the_day_block_and_a_volume_jump_only_warns(gated_runs):
    frame = gated_runs.clean_social.copy()
    frame.loc[frame.index[:3], "ts"] += pd.Timedelta(days=1)
    a_week_of_three_times_the_rows = [3 * len(frame)] * 7
    parameters = suite_parameters(CLEAN_DAY, a_week_of_three_times_the_rows, QualityThresholds(), sparse=False)
    outcome = validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home)
    assert [(failure.name, failure.critical) for failure in outcome.failed_expectations] == [
        ("expect_column_values_to_be_between(ts)", True), ("expect_table_row_count_to_be_between()", False),
    ]
    assert outcome.failed_expectations[0].unexpected[0].startswith(str(CORRUPTED_DAY))
    assert outcome.blocking

    frame = gated_runs.clean_social.copy()
    outcome = validate_frame(frame, "stg_social__engagements", parameters, gated_runs.home)
    assert not outcome.success and not outcome.blocking  # a third of the usual volume: WARN only
    far_below_the_floor = suite_parameters(CLEAN_DAY, [30 * len(frame)] * 7, QualityThresholds(), sparse=False)
    assert validate_frame(frame, "stg_social__engagements", far_below_the_floor, gated_runs.home).blocking
    sparse_source = suite_parameters(CLEAN_DAY, [30 * len(frame)] * 7, QualityThresholds(), sparse=True)
    assert validate_frame(frame, "stg_social__engagements", sparse_source, gated_runs.home).success


def test_data_docs_are_built_under_the_home_work_offline_and_name_validations_by_day(gated_runs):
    index = build_data_docs(gated_runs.home)
    assert index.is_file()
    assert index.is_relative_to(gated_runs.home / "gx")
    text = index.read_text()
    assert re.search(r"fct_events \d{4}-\d{2}-\d{2}", text) and "__none__" not in text
    for page in index.parent.rglob("*.html"):  # every script and stylesheet is a vendored file of the site
        for link in re.findall(r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"', page.read_text()):
            assert (page.parent / link).is_file(), f"{page}: {link}"


def audit_history(path: Path, rows: list[tuple]) -> None:
    """A real audit_record_counts table: (source, entity, day, raw, staged, rejected)."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("""create table audit_record_counts (source varchar, entity varchar, event_date date,
                              raw_lines bigint, staged bigint, rejected bigint)""")
        connection.executemany("insert into audit_record_counts values (?, ?, ?, ?, ?, ?)", rows)


def test_volume_gates_warn_on_bursts_allow_sparse_empty_days_and_block_a_silent_dense_source(home):
    """The gate probes of the issue: a 10x burst and an empty day of a sparse source only warn or pass;
    a dense source going silent, or rejecting too much, blocks its day alone."""
    from dagster_project.defs.quality.checks import AUDIT_TABLE, validate_days

    first = date(2026, 9, 1)
    days = [first + timedelta(days=offset) for offset in range(16)]
    web = {day: 1000 + 37 * (index % 5) for index, day in enumerate(days)}
    shop = {day: 50 + 25 * (index % 4) for index, day in enumerate(days)}
    burst, empty, silent, rejecting, early_burst = days[10], days[11], days[12], days[13], days[2]
    shop[burst] = shop[early_burst] = 900
    shop[empty] = 0
    web[silent] = 20
    rows = [("web", "events", day, web[day], web[day] - (120 if day == rejecting else 0),
             120 if day == rejecting else 0) for day in days]
    rows += [("import", "events", day, shop[day], shop[day], 0) for day in days if shop[day]]
    audit_history(warehouse_path(home), rows)
    assert shop[burst] > 2 * shop[days[9]] and shop[burst] >= 10 * min(filter(None, shop.values()))  # old bound fails

    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        outcomes = validate_days(connection, AUDIT_TABLE, days, QualityThresholds())
    blocked = {day for day, outcome in outcomes.items() if outcome.blocking}
    warned = {day for day, outcome in outcomes.items() if not outcome.success and not outcome.blocking}
    assert blocked == {silent, rejecting}
    assert warned == {burst}  # the early burst has no baseline yet (7 days of history needed)
    assert [f.name for f in outcomes[silent].failed_expectations if f.critical] == [
        "expect_column_pair_values_a_to_be_greater_than_b(volume_ratio, volume_floor)"]
    assert [f.name for f in outcomes[rejecting].failed_expectations if f.critical] == [REJECT_RATE_EXPECTATION]
    assert outcomes[empty].success
    # One SQL screen judged the 16 days: GX ran on the days it flagged and on the newest day (for the Data Docs).
    assert {day for day, outcome in outcomes.items() if outcome.by_gx} == {burst, silent, rejecting, days[-1]}
    assert all(outcome.evaluated == outcomes[days[-1]].evaluated for outcome in outcomes.values())

    # Declared once, settable: with `import` dense, its empty day blocks too.
    dense_shop = QualityThresholds(dense_sources=("web", "import"))
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as connection:
        assert validate_days(connection, AUDIT_TABLE, [empty], dense_shop)[empty].blocking


def test_the_gate_thresholds_are_dagster_config_made_from_the_one_dataclass(monkeypatch):
    """Every field of `QualityThresholds` is a described config field of the `quality_gates` resource,
    with the dataclass's default, and has its environment variable; bad values are refused by name."""
    from dataclasses import fields

    from dagster_project.defs.quality.checks import QualityGates
    from dagster_project.run_config import settings_from_config

    knobs = fields(QualityThresholds)
    schema = QualityGates.to_config_schema().as_field().config_type.fields
    assert {knob.name for knob in knobs} == set(schema) and all(schema[knob.name].description for knob in knobs)
    assert settings_from_config(QualityGates(), QualityThresholds) == QualityThresholds()
    configured = settings_from_config(
        QualityGates(max_reject_rate=0.01, source_reject_rates={"crm": 0.3}, dense_sources=["web"]), QualityThresholds)
    assert configured.reject_rate_of("web") == 0.01 and configured.reject_rate_of("crm") == 0.3
    assert configured.is_sparse("iot") and not configured.is_sparse("web")

    written = {"max_reject_rate": "0.2", "source_reject_rates": "import=0.4, crm=0.1", "dense_sources": "web, iot",
               "baseline_days": "14", "min_history_days": "3", "warn_mads": "2.5", "warn_min_spread": "0.25",
               "error_floor_ratio": "0.1", "sample_rows": "500"}
    assert set(written) == {knob.name for knob in knobs}
    for knob in knobs:
        monkeypatch.setenv(knob.metadata["env"], written[knob.name])
    assert QualityThresholds.from_env() == QualityThresholds(
        max_reject_rate=0.2, source_reject_rates=(("crm", 0.1), ("import", 0.4)), dense_sources=("web", "iot"),
        baseline_days=14, min_history_days=3, warn_mads=2.5, warn_min_spread=0.25, error_floor_ratio=0.1,
        sample_rows=500)
    monkeypatch.setenv("PERSONAS_GX_BASELINE_DAYS", "two weeks")
    with pytest.raises(ValueError, match="PERSONAS_GX_BASELINE_DAYS='two weeks'"):
        QualityThresholds.from_env()
    with pytest.raises(ValueError, match=r"source_reject_rates\[crm\] = 1.5 is not a share"):
        QualityThresholds(source_reject_rates=(("crm", 1.5),))


def test_run_config_of_the_quality_gates_resource_reaches_the_gate(gated_runs):
    """The corrupted day's web reject rate blocks it at the default 5%; a run configured to allow 90% passes it."""
    audit_gate = [check for check in quality_checks if check.check_keys == {
        AssetCheckKey(AssetKey("audit_record_counts"), "gx_audit_record_counts")}]
    lenient = {"resources": {"quality_gates": {"config": {"source_reject_rates": {"web": 0.9}}}}}
    results = {
        name: materialize(GATED_GRAPH, resources=RESOURCES, selection=AssetSelection.checks(*audit_gate),
                          run_config=config, raise_on_error=False,
                          tags={"dagster/asset_partition_range_start": CORRUPTED_DAY.isoformat(),
                                "dagster/asset_partition_range_end": CORRUPTED_DAY.isoformat()})
        for name, config in (("default", None), ("lenient", lenient))
    }
    verdicts = {name: gx_evaluations(result)["audit_record_counts"] for name, result in results.items()}
    assert not verdicts["default"].passed and verdicts["default"].severity == AssetCheckSeverity.ERROR
    assert verdicts["lenient"].passed


def test_rerun_commands_name_each_run_of_blocked_days():
    days = [date(2026, 9, 3), date(2026, 9, 1), date(2026, 9, 4), date(2026, 9, 9)]
    assert rerun_commands(days) == ["personas run --start 2026-09-01",
                                    "personas run --start 2026-09-03 --end 2026-09-04",
                                    "personas run --start 2026-09-09"]


def test_a_ranged_run_records_every_gate_day_by_day(gated_runs):
    """One run over both days: each gate records a verdict per day, which the instance keeps per partition."""
    with DagsterInstance.ephemeral() as instance:
        result = materialize(GATED_GRAPH, resources=RESOURCES, selection=AssetSelection.checks(*quality_checks),
                             instance=instance, raise_on_error=False,
                             tags={"dagster/asset_partition_range_start": CLEAN_DAY.isoformat(),
                                   "dagster/asset_partition_range_end": CORRUPTED_DAY.isoformat()})
        audit_key = AssetCheckKey(AssetKey("audit_record_counts"), "gx_audit_record_counts")
        kept = {info.partition_key: info.latest_execution_status.value
                for info in instance.event_log_storage.get_asset_check_partition_info([audit_key])}
    assert not result.success  # the corrupted day's audit gate blocks
    days = {}
    for evaluation in result.get_asset_check_evaluations():
        days.setdefault(evaluation.check_name, {})[evaluation.partition] = evaluation
    assert len(days) == len(quality_checks) - 1 and "gx_fct_events" not in days  # the failed audit gate blocks it
    assert all(set(by_day) == {CLEAN_DAY.isoformat(), CORRUPTED_DAY.isoformat()} for by_day in days.values())
    clean, corrupted = (days["gx_audit_record_counts"][day.isoformat()] for day in (CLEAN_DAY, CORRUPTED_DAY))
    assert clean.passed and clean.metadata["failed_partitions"].value == "none"
    assert not corrupted.passed and corrupted.severity == AssetCheckSeverity.ERROR
    assert corrupted.metadata["failed_expectations"].value == [REJECT_RATE_EXPECTATION]
    assert kept == {CLEAN_DAY.isoformat(): "SUCCEEDED", CORRUPTED_DAY.isoformat(): "FAILED"}
    (folded,) = [e for e in gate_verdicts(result.get_asset_check_evaluations()) if e.check_name == audit_key.name]
    assert not folded.passed and folded.metadata["failed_partitions"].value == CORRUPTED_DAY.isoformat()
    assert folded.metadata["rerun"].value == f"personas run --start {CORRUPTED_DAY}"
    assert folded.metadata["evaluated"].value == 2 * expectations_in_suite("audit_record_counts")
