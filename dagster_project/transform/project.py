"""The dbt project as Dagster sees it; the manifest is parsed once and reused until dbt files change."""

import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetSpec, AutomationCondition
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject
from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY, default_description_fn
from packaging import version

from dagster_project.asset_defaults import DATA_PLATFORM
from dagster_project.operations.automation import rerun_on_upstream_change

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
DBT_INPUTS = ("models", "macros", "tests", "dbt_project.yml", "profiles.yml")

GROUP_BY_FOLDER = {"staging": "staging", "intermediate": "identity", "marts": "warehouse"}

# The dbt next to this interpreter, so a venv works without being activated.
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def home_dbt_target(home: Path) -> Path:
    """Where a home's dbt runs keep their artifacts and dbt's partial-parse state.

    dbt parses only what changed since the state it finds, and the state names the profile it was
    parsed with, that is the home's warehouse: one state shared by every home (dagster-dbt's default,
    `dbt/target/`, copied into a new folder per run) made a run after another home's parse the
    whole project again, 4-10 s on two busy cores. A home's own folder, written by each of its runs
    and read by the next, leaves a run nothing to parse; it also keeps one run's artifacts, not one
    folder per run.
    """
    return home / "dbt" / "target"


class LocalDbtCliResource(DbtCliResource):
    """The dbt of this interpreter's dbt-core package, started without in-process dbt work.

    DbtCliResource learns the version from `dbt --version` once per resource instance, that is
    once per run: a second dbt start-up (2-5 s on two busy cores) before every build. Before each
    invocation it also builds a dbt adapter inside the Dagster process, importing dbt and loading
    the profile and every macro, only for `fetch_row_counts` and `fetch_column_metadata`. This
    project calls neither: it reads its row counts once dbt has released the warehouse
    (defs/transform/assets.py). The adapter delayed dbt's start by 1.2 s, or by 5 s while the dbt
    step's background imports competed with it for the interpreter.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_cli_resource() -> DbtCliResource:
    return LocalDbtCliResource(project_dir=dbt_project, dbt_executable=str(DBT_EXECUTABLE))


def _newest_dbt_input_mtime() -> float:
    paths = []
    for name in DBT_INPUTS:
        path = DBT_PROJECT_DIR / name
        paths.extend(path.rglob("*") if path.is_dir() else [path])
    return max(path.stat().st_mtime for path in paths if path.is_file())


def ensure_manifest() -> Path:
    """Parse the dbt project only when its manifest is missing or older than a dbt file.

    Runs and steps then load a ready manifest instead of paying a `dbt parse` each time.
    """
    manifest = dbt_project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _newest_dbt_input_mtime():
        dbt_cli_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
    return manifest


class PersonasDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the `raw/<source>__<entity>` tables; models are grouped by layer.

    Column schemas (`dagster/column_schema`, with types) come from the columns and `data_type`s the
    yml files declare. The description is the yml's, without the model's SQL (the code reference
    links to the file). The `DbtProject` dagster-dbt keeps in each asset's metadata is left out: the
    UI can only show it as "[DbtProject] (unserializable)", and `dbt.cli` then takes the project
    directory from the resource, which names the same project.
    """

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=True))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        # At run time dagster-dbt rebuilds specs with the project it finds in the metadata: none, so name it here.
        spec = super().get_asset_spec(manifest, unique_id, project or dbt_project)
        return spec.replace_attributes(
            metadata={key: value for key, value in spec.metadata.items() if key != DAGSTER_DBT_PROJECT_METADATA_KEY}
        )

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return default_description_fn(dbt_resource_props, display_raw_sql=False)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        folder = dbt_resource_props["fqn"][1] if len(dbt_resource_props["fqn"]) > 2 else None
        return GROUP_BY_FOLDER.get(folder, "warehouse")

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return DATA_PLATFORM

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        return rerun_on_upstream_change
