"""One day's fitted personas as an MLflow pyfunc: new memories in, nearest persona out.

The model holds the day's vectoriser, centroids, persona ids and labels, so whoever
loads a registered version assigns memories exactly as `persona_model` did that day.
It pickles `MemoryVectorizer` by reference: load it where `dagster_project` is installed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import Array, ColSpec, Schema

from dagster_project.science.clustering import assign
from dagster_project.science.daily import DayFit
from dagster_project.science.vectorize import MemoryVectorizer

INPUT_COLUMNS = ("text", "intent", "sources")
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text"), ColSpec("string", "intent"), ColSpec(Array("string"), "sources")]),
    outputs=Schema([ColSpec("long", "persona_id"), ColSpec("string", "label"), ColSpec("double", "distance")]),
)


class PersonaModel(PythonModel):
    """Assigns memories (columns text, intent, sources) to the nearest persona centroid."""

    def __init__(
        self, vectorizer: MemoryVectorizer, centroids: np.ndarray, persona_ids: np.ndarray, labels: list[str]
    ) -> None:
        self.vectorizer = vectorizer
        self.centroids = centroids
        self.persona_ids = persona_ids
        self.labels = np.asarray(labels, dtype=object)

    @classmethod
    def from_fit(cls, fit: DayFit) -> PersonaModel:
        """Keeps the centroids that hold memories, the personas the `personas` table lists."""
        label_of = dict(zip(fit.personas["persona_id"], fit.personas["label"], strict=True))
        kept = np.isin(fit.persona_ids, list(label_of))
        return cls(
            fit.vectorizer,
            fit.centroids[kept],
            fit.persona_ids[kept],
            [label_of[persona_id] for persona_id in fit.persona_ids[kept].tolist()],
        )

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """persona_id, label and cosine distance to the centroid, one row per input memory."""
        memories = pl.from_pandas(model_input[list(INPUT_COLUMNS)])
        nearest, distance = assign(self.vectorizer.transform(memories), self.centroids)
        return pd.DataFrame({
            "persona_id": self.persona_ids[nearest],
            "label": self.labels[nearest],
            "distance": distance,
        })
