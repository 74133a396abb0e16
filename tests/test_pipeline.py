"""Generated multi-source days through the real raw loader, dbt and Dagster, scored against the truth."""

import json
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
from dagster import AssetKey

from dagster_project.definitions import defs
from dagster_project.evaluation import identity_scores
from dagster_project.generator import generate
from dagster_project.paths import truth_dir, warehouse_path
from dagster_project.transform.project import dbt_cli_resource, home_dbt_target
from generated_run import LAST as LAST_OF_RUN
from generated_run import START as START_OF_RUN
from pipeline_helpers import WAREHOUSE_ASSETS, materialize_day, materialize_range, query, using_home

START = date(2026, 10, 1)
DAYS = [START, START + timedelta(days=1)]


@pytest.fixture(scope="module")
def generated_home(tmp_path_factory):
    with using_home(tmp_path_factory.mktemp("generated")) as home:
        generate(home, days=3, people=400, events_per_day=2500, seed=11, start_date=START, world="easy")
        for day in DAYS:
            materialize_day(day, selection=WAREHOUSE_ASSETS)
        yield home


def _truth_records(home) -> pl.DataFrame:
    return pl.read_parquet(truth_dir(home) / "records.parquet").filter(pl.col("event_date").is_in(DAYS))


def test_every_raw_record_is_staged_or_rejected(generated_home):
    audit = query("select source, entity, event_date, raw_lines, staged, rejected from audit_record_counts")
    assert {row[2] for row in audit} == set(DAYS)
    assert len(audit) == 7 * len(DAYS)
    for source, entity, day, raw_lines, staged, rejected in audit:
        assert raw_lines == staged + rejected > 0, (source, entity, day)
    written = _truth_records(generated_home).group_by("source", "entity", "event_date").len()
    expected = {(row["source"], row["entity"], row["event_date"]): row["len"] for row in written.iter_rows(named=True)}
    assert {(source, entity, day): raw_lines for source, entity, day, raw_lines, *_ in audit} == expected


def test_rejects_match_the_planted_broken_records(generated_home):
    planted = _truth_records(generated_home).filter(pl.col("expected_reason").is_not_null())
    expected = set(planted.select("landing_file", "line_no", "expected_reason").iter_rows())
    rejected = set(query("select landing_file, line_no, reason from rejected_events"))
    assert rejected == expected
    assert len({reason for *_, reason in rejected}) >= 8


def test_identity_stitching_recovers_the_planted_persons(generated_home):
    scores = identity_scores(generated_home)
    assert scores["identifiers_scored"] > 500
    assert scores["identifiers_unmatched"] == 0
    assert scores["identity_precision"] >= 0.99
    assert scores["identity_recall"] >= 0.99


def test_no_raw_pii_in_any_table_after_staging(generated_home):
    people = pl.read_parquet(truth_dir(generated_home) / "people.parquet")
    secrets = pl.concat([
        people.select(value=pl.col("email")),
        people.select(value=pl.col("phone")),
        people.select(value=pl.concat_str("first_name", pl.lit(" "), "last_name")),
        people.select(value=pl.col("ips")).explode("value"),
    ]).drop_nulls().unique()
    names = pl.concat([people.select(value=pl.col("first_name")), people.select(value=pl.col("last_name"))]).drop_nulls()
    assert secrets.height > 1000

    with duckdb.connect(str(warehouse_path(generated_home)), read_only=True) as connection:
        tables = [row[0] for row in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        connection.register("secrets", secrets.to_arrow())
        connection.register("names", names.unique().to_arrow())
        assert {"fct_events", "rejected_events", "stg_crm__customers", "dim_customers"} <= set(tables)
        for table in tables:
            columns = [row[0] for row in connection.execute(f"describe {table}").fetchall()]
            cells = " union all ".join(f"select cast({column} as varchar) as cell from {table}" for column in columns)
            leaks = connection.execute(
                f"""with cells as ({cells})
                    select cell from cells join secrets on contains(cell, secrets.value)
                    union all
                    select cell from cells join names on cell = names.value
                    limit 5"""
            ).fetchall()
            assert leaks == [], f"PII in {table}: {leaks}"


def _partition_rows(tables, days):
    return {table: sorted(query(f"select * from {table} where event_date between ? and ?", [days[0], days[-1]]))
            for table in tables}


def test_dbt_starts_without_an_adapter_in_the_dagster_process(generated_home, tmp_path):
    """Row counts are read from DuckDB after dbt exits, so nothing needs dbt imported in-process."""
    invocation = dbt_cli_resource().cli(["ls", "--quiet", "--resource-type", "model"], target_path=tmp_path)
    assert invocation.adapter is None
    assert invocation.wait().is_successful()


def test_a_home_s_next_dbt_build_parses_nothing(generated_home):
    """dbt keeps its parse state in the home, and the range is read only when executing: the fixture's second
    day (another home's parse in between or not, another range) re-parsed no file."""
    lines = [json.loads(line) for line in (home_dbt_target(generated_home) / "dbt.log").read_text().splitlines()
             if line.startswith("{")]
    invocations = list(dict.fromkeys(line["info"]["invocation_id"] for line in lines))
    assert len(invocations) == len(DAYS)
    partial_parse = [line["data"] for line in lines
                     if line["info"]["invocation_id"] == invocations[-1] and line["info"]["code"] == "I040"]
    assert partial_parse == [{"added": 0, "changed": 0, "deleted": 0}]


def test_rematerialising_a_partition_leaves_identical_rows(generated_home):
    tables = ("fct_events", "rejected_events", "audit_record_counts", "int_identity_links")
    before = _partition_rows(tables, DAYS[1:])
    materialize_day(DAYS[1], selection=WAREHOUSE_ASSETS)
    assert all(before[table] for table in tables)
    assert _partition_rows(tables, DAYS[1:]) == before


def test_a_range_run_gives_the_same_rows_as_day_by_day_runs(generated_home):
    tables = ("fct_events", "rejected_events", "audit_record_counts")
    day_by_day = _partition_rows(tables, DAYS)
    materialize_range(DAYS[0], DAYS[-1], selection=WAREHOUSE_ASSETS)
    assert _partition_rows(tables, DAYS) == day_by_day


def _day_values(result, key: str) -> dict[str, dict]:
    """Each partition's materialisation metadata of `key` in a run, as plain values."""
    return {event.partition: {name: value.value for name, value in event.materialization.metadata.items()}
            for event in result.get_asset_materialization_events() if event.asset_key == AssetKey(key)}


def test_each_day_of_a_ranged_run_carries_its_own_metadata(generated_run):
    """One ranged materialize(): every day's materialisation has that day's values, and tables their column types."""
    result, days = generated_run.result, [START_OF_RUN.isoformat(), LAST_OF_RUN.isoformat()]
    with using_home(generated_run.home):
        for key in ("intent_memories", "personas", "user_personas", "fct_events"):
            counted = dict(query(f"select event_date::varchar, count(*) from {key} group by all"))
            shown = {day: values["dagster/row_count"] for day, values in _day_values(result, key).items()}
            assert shown == counted, key
        table_columns = {key: {name: kind.upper() for name, kind, *_ in query(f"describe {key}")}
                         for key in ("intent_memories", "personas", "persona_fairness", "fct_events")}
    memories, personas = _day_values(result, "intent_memories"), _day_values(result, "personas")
    assert memories[days[0]]["events"] != memories[days[1]]["events"]
    assert memories[days[0]]["example_summaries"] != memories[days[1]]["example_summaries"]
    assert personas[days[0]]["model_version"] != personas[days[1]]["model_version"]
    assert personas[days[0]]["catalogue"] != personas[days[1]]["catalogue"]
    assert all(personas[day]["mean_quality"] == float(f"{personas[day]['mean_quality']:.4g}") for day in days)
    fct_events = defs.resolve_asset_graph().get(AssetKey("fct_events"))
    assert "Raw SQL" not in fct_events.description and "dagster_dbt/project" not in fct_events.metadata
    for key, columns in table_columns.items():  # Python-written tables from their frames, dbt's from the manifest
        schema = (_day_values(result, key)[days[0]].get("dagster/column_schema")
                  or defs.resolve_asset_graph().get(AssetKey(key)).metadata["dagster/column_schema"])
        assert {column.name: column.type.upper() for column in schema.columns} == columns, key
