"""The code location: every definition under `defs/`, bound to the resources of the home a run uses.

Importing this module only builds definitions: no folder, file or environment variable of a
home is touched. The commands activate a home (`paths.activate_home`); a run finds its home
through its resources (see `resources/duckdb.py`).
"""

from pathlib import Path

from dagster import Definitions, load_from_defs_folder

from dagster_project.resources.duckdb import DuckDBResource
from dagster_project.tracking.resource import MlflowTracking
from dagster_project.transform.project import dbt_cli_resource

defs = Definitions.merge(
    load_from_defs_folder(path_within_project=Path(__file__).parent),
    Definitions(
        resources={
            "dbt": dbt_cli_resource(),
            "duckdb": DuckDBResource(),
            "mlflow": MlflowTracking(),
        }
    ),
)
