"""The main job: every materialisable asset of the graph, for a day or a range of days."""

from dagster import AssetSelection, define_asset_job

from dagster_project.partitions import daily_partitions

BUILD_JOB_NAME = "build_personas"

build_personas_job = define_asset_job(
    BUILD_JOB_NAME,
    selection=AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Landing files to personas for the selected days: raw lines, dbt warehouse, memories, personas.",
)
