"""The raw landing tables in Dagster: each day's own line counts, and the column types of the table written."""

from datetime import date

from dagster import AssetKey

from dagster_project.ingest.landing import LANDING_ENTITIES
from dagster_project.paths import landing_dir
from generated_run import LAST, START
from pipeline_helpers import query, using_home


def test_each_raw_day_shows_its_own_lines_and_every_raw_table_its_column_types(generated_run):
    materialisations = generated_run.result.asset_materializations_for_node("raw_landing_lines")
    days = {START.isoformat(), LAST.isoformat()}
    with using_home(generated_run.home):
        for entity in LANDING_ENTITIES:
            key = AssetKey(["raw", entity.table])
            by_day = {m.partition: {name: value.value for name, value in m.metadata.items()}
                      for m in materialisations if m.asset_key == key}
            assert set(by_day) == days, entity.table
            counted = dict(query(f"select event_date::varchar, count(*) from raw.{entity.table} group by all"))
            assert {day: values["dagster/row_count"] for day, values in by_day.items()} == {
                day: counted.get(day, 0) for day in days}, entity.table
            assert {day: values["file_received"] for day, values in by_day.items()} == {
                day: entity.path(landing_dir(generated_run.home), date.fromisoformat(day)).exists() for day in days}
            assert {values["erased_person_lines_dropped"] for values in by_day.values()} == {0}
            described = {name: kind for name, kind, *_ in query(f"describe raw.{entity.table}")}
            for values in by_day.values():
                assert {column.name: column.type for column in values["dagster/column_schema"].columns} == described
    web = {m.partition: m.metadata["dagster/row_count"].value for m in materialisations
           if m.asset_key == AssetKey(["raw", "web__events"])}
    assert web[START.isoformat()] != web[LAST.isoformat()]  # not the range's total on both days
