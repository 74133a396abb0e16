"""The Dagster resource over the home's MLflow store (`tracking/store.py`)."""

from dagster import ConfigurableResource

from dagster_project.tracking.store import EXPERIMENT_NAME, REGISTERED_MODEL_NAME, MlflowStore


class MlflowTracking(ConfigurableResource):
    """Run config may name another experiment or registered model; the store does the rest."""

    experiment_name: str = EXPERIMENT_NAME
    registered_model_name: str = REGISTERED_MODEL_NAME

    def store(self) -> MlflowStore:
        return MlflowStore(self.experiment_name, self.registered_model_name)
