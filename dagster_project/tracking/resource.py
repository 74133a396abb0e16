"""MLflow over the home's own store: a SQLite backend and a file artifact root under `$PERSONAS_HOME/mlflow`.

MLflow 3 no longer accepts a plain file store, and SQLite admits one writer at a time:
every step that writes through this resource runs in the `duckdb` pool (limit 1), like
the DuckDB writers it runs next to, so parallel partitions queue instead of failing
with "database is locked".
"""

from pathlib import Path

import mlflow
from dagster import ConfigurableResource
from mlflow import MlflowClient

from dagster_project.paths import mlflow_dir, personas_home

EXPERIMENT_NAME = "personas"
REGISTERED_MODEL_NAME = "persona-model"


def store_uri(home: Path) -> str:
    return f"sqlite:///{mlflow_dir(home) / 'mlflow.db'}"


def artifact_root(home: Path) -> Path:
    return mlflow_dir(home) / "artifacts"


class MlflowTracking(ConfigurableResource):
    """The MLflow store of the active home, resolved when a step uses it, so one process can serve several homes."""

    experiment_name: str = EXPERIMENT_NAME
    registered_model_name: str = REGISTERED_MODEL_NAME

    @property
    def tracking_uri(self) -> str:
        return store_uri(personas_home())

    def activate(self) -> str:
        """Point MLflow (fluent API and registry) at this home; the experiment's id, created on first use."""
        uri = self.tracking_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = MlflowClient(uri, uri)
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        root = artifact_root(personas_home())
        root.mkdir(parents=True, exist_ok=True)
        return client.create_experiment(self.experiment_name, artifact_location=root.as_uri())

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri, self.tracking_uri)
