"""MLflow over the home's store: by default a SQLite backend and a file artifact root under `$PERSONAS_HOME/mlflow`.

The production profile (`dagster_project.deploy`) moves the backend to PostgreSQL
(`PERSONAS_MLFLOW_DB_URL`) and the artifacts to a shared path or object store.

MLflow 3 no longer accepts a plain file store, and SQLite admits one writer at a time:
every asset that writes to it runs in the `duckdb` pool (limit 1), like
the DuckDB writers it runs next to, so parallel partitions queue instead of failing
with "database is locked".
"""

from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from sqlalchemy.engine import make_url

from dagster_project.deploy import active_profile, required_url
from dagster_project.deploy.profile import MLFLOW_DB_URL_ENV
from dagster_project.paths import mlflow_dir, personas_home

EXPERIMENT_NAME = "personas"
REGISTERED_MODEL_NAME = "persona-model"


def store_uri(home: Path) -> str:
    """The tracking and registry store of the home's profile."""
    if active_profile(home).is_production:
        return required_url(MLFLOW_DB_URL_ENV)
    return f"sqlite:///{mlflow_dir(home) / 'mlflow.db'}"


def artifact_location(home: Path) -> str:
    """Where a new experiment keeps its artifacts: an object-store URI as given, else a local folder made now."""
    configured = active_profile(home).artifact_root
    if configured and "://" in configured:
        return configured
    root = Path(configured) if configured else mlflow_dir(home) / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    return root.absolute().as_uri()



@dataclass(frozen=True)
class MlflowStore:
    """The MLflow store of the active home, resolved at each use, so one process can serve several homes.

    Plain (no Dagster), for the API, the review commands and the tracking helpers; the assets reach
    it through the `MlflowTracking` resource.
    """

    experiment_name: str = EXPERIMENT_NAME
    registered_model_name: str = REGISTERED_MODEL_NAME
    @property
    def tracking_uri(self) -> str:
        return store_uri(personas_home())

    @property
    def display_uri(self) -> str:
        """The store's URI for messages: a PostgreSQL password never reaches a page or a log."""
        uri = self.tracking_uri
        return make_url(uri).render_as_string(hide_password=True) if "@" in uri else uri

    def activate(self) -> str:
        """Point MLflow (fluent API and registry) at this home; the experiment's id, created on first use."""
        uri = self.tracking_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = MlflowClient(uri, uri)
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(self.experiment_name, artifact_location=artifact_location(personas_home()))

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri, self.tracking_uri)
