"""One MLflow run per fitted model date: settings, quality, the persona report, the share plot and the model.

`log_day_fits` is what `persona_model` calls with the fits of its range; the parameter,
metric and sanity helpers are plain functions of the fit.
"""

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from importlib.metadata import version

import matplotlib.pyplot as plt
import mlflow
import polars as pl
from mlflow.entities.model_registry import ModelVersion

from dagster_project.science.daily import DayFit, PersonaSettings
from dagster_project.science.labelling import UNLABELLED
from dagster_project.tracking.model import INPUT_COLUMNS, SIGNATURE, PersonaModel
from dagster_project.tracking.registry import (
    PARTITION_DATE_TAG,
    SANITY_TAG,
    ensure_registered_model,
    register_day_model,
)
from dagster_project.tracking.report import persona_report, share_history_figure
from dagster_project.tracking.store import MlflowStore

QUALITY_MEASURES = ("cohesion", "evidence_alignment", "truthfulness", "coverage", "quality")
MIN_PERSONAS = 2
MODEL_NAME = "persona_model"
DAGSTER_RUN_TAG = "dagster_run_id"  # which Dagster run logged the fit: crash recovery ends only its own
INPUT_EXAMPLE_ROWS = 3
DESCRIPTION_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
RUN_NAME_PREFIX = "persona-model"
LISTED_PERSONAS = 5
REGISTERED_MODEL_DESCRIPTION = (
    "Daily persona models of the persona platform, one version per model date (tag partition_date): "
    "the window's TF-IDF + person-context vectoriser, k-means centroids, persona ids and labels. `predict` assigns "
    "intent memories to their nearest persona. The alias `champion` marks the version the API serves "
    "(moved by the `champion_model` asset when the day's gates and the fit's sanity rule pass)."
)
# Listed rather than inferred: inference loads the model in a subprocess, seconds per day.
MODEL_REQUIREMENTS = [
    f"{package}=={version(package)}" for package in ("mlflow", "numpy", "pandas", "polars", "scikit-learn", "scipy")
]


@dataclass(frozen=True)
class FitSanity:
    """The fit's own gate for the champion alias: every persona labelled, at least two personas."""

    passed: bool
    reasons: tuple[str, ...]


def fit_sanity(personas: pl.DataFrame) -> FitSanity:
    """Why the fit may not become champion, from its `personas` rows (persona_id, label).

    Every label term is supported by its evidence by construction (`fit_day` raises
    otherwise); a persona whose evidence supports no term at all is "unlabelled".
    Truthfulness is scored on held-out members, so it is a measure, not a gate.
    """
    reasons = [
        f"persona {row['persona_id']} is {UNLABELLED}: its evidence supports no term"
        for row in personas.filter(pl.col("label") == UNLABELLED).iter_rows(named=True)
    ]
    if personas.height < MIN_PERSONAS:
        reasons.append(f"{personas.height} persona(s), fewer than {MIN_PERSONAS}")
    return FitSanity(passed=not reasons, reasons=tuple(reasons))


def fit_params(fit: DayFit, settings: PersonaSettings, day: date) -> dict[str, object]:
    """Window, recency, k range and chosen k, vectoriser settings and the partition date."""
    vectorizer = fit.vectorizer
    return {
        **asdict(settings),
        "chosen_k": len(fit.persona_ids),
        "partition_date": day.isoformat(),
        "vectorizer_intent_weight": vectorizer.intent_weight,
        "vectorizer_source_weight": vectorizer.source_weight,
        "vectorizer_min_df": vectorizer.min_df,
        "vectorizer_max_features": vectorizer.max_features,
        "vectorizer_n_features": len(vectorizer.feature_names),
    }


def fit_metrics(fit: DayFit) -> dict[str, float]:
    """Mean and min of every quality measure over the personas, plus the fit's own metrics."""
    personas = fit.personas
    return {
        **{f"{measure}_mean": float(personas[measure].mean()) for measure in QUALITY_MEASURES},
        **{f"{measure}_min": float(personas[measure].min()) for measure in QUALITY_MEASURES},
        "n_personas": float(personas.height),
        "silhouette": fit.metrics["silhouette"],
        "n_memories": fit.metrics["n_memories"],
        "n_users": float(fit.user_personas["person_id"].n_unique()),
    }


def fit_description(fit: DayFit, settings: PersonaSettings, sanity: FitSanity) -> str:
    """What a reader of the run or model version needs first: window, size, the largest personas, quality, sanity."""
    day = fit.personas["event_date"][0]
    personas = fit.personas.sort("share", "persona_id", descending=[True, False])
    largest = ", ".join(f"{row['persona_id']}: {row['label']} ({row['share']:.0%})"
                        for row in personas.head(LISTED_PERSONAS).iter_rows(named=True))
    verdict = ("fit sanity passed: a champion candidate once the day's gates pass" if sanity.passed
               else "fit sanity failed, never champion: " + "; ".join(sanity.reasons))
    return (
        f"Personas of {day}, fitted on the intent memories of {day - timedelta(days=settings.window_days - 1)}..{day} "
        f"({int(fit.metrics['n_memories'])} memories, {fit.user_personas['person_id'].n_unique()} people): "
        f"{personas.height} personas; largest {largest}. Mean quality {personas['quality'].mean():.2f} "
        f"(held-out truthfulness {personas['truthfulness'].mean():.2f}, coverage {personas['coverage'].mean():.2f}). "
        f"{verdict[0].upper()}{verdict[1:]}."
    )


def log_day_fits(
    tracking: MlflowStore,
    fits: dict[date, DayFit],
    settings: PersonaSettings,
    memories: pl.DataFrame,
    share_history: pl.DataFrame,
    dagster_run_id: str,
) -> dict[date, ModelVersion]:
    """Log the fit of every model date as a run and register its model; returns each day's new version.

    The store is looked up once for the whole range, not once per day.
    `memories`: the intent memories of the fits' windows (for evidence summaries and the input example);
    `share_history`: the `personas` rows (event_date, persona_id, label, share) of those windows;
    `dagster_run_id`: the run that fits, tagged so that recovering that run, dead, ends only its fits.
    """
    if not fits:
        return {}
    experiment_id = tracking.activate()
    ensure_registered_model(tracking, REGISTERED_MODEL_DESCRIPTION)
    return {
        day: _log_day_fit(tracking, experiment_id, fit, settings, memories, share_history, dagster_run_id)
        for day, fit in fits.items()
    }


def _log_day_fit(
    tracking: MlflowStore,
    experiment_id: str,
    fit: DayFit,
    settings: PersonaSettings,
    memories: pl.DataFrame,
    share_history: pl.DataFrame,
    dagster_run_id: str,
) -> ModelVersion:
    """One model date's run and model version.

    The share plot covers the model's own window, the model dates of [day - W + 1, day]: a plot of the
    whole history grows with every day (one more line and legend entry per persona id ever seen, 3 s a
    day to draw after 200 days) and its legend no longer fits the figure.
    """
    day = fit.personas["event_date"][0]
    sanity = fit_sanity(fit.personas)
    description = fit_description(fit, settings, sanity)
    tags = {PARTITION_DATE_TAG: day.isoformat(), SANITY_TAG: str(sanity.passed).lower(), DAGSTER_RUN_TAG: dagster_run_id,
            DESCRIPTION_TAG: description}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{RUN_NAME_PREFIX} {day}", tags=tags):
        mlflow.log_params(fit_params(fit, settings, day))
        mlflow.log_text(persona_report(day.isoformat(), fit.personas, memories), "persona_report.md")
        if sanity.reasons:
            mlflow.log_text("\n".join(sanity.reasons) + "\n", "fit_sanity.txt")
        window_start = day - timedelta(days=settings.window_days - 1)
        figure = share_history_figure(share_history.filter(pl.col("event_date").is_between(window_start, day)))
        mlflow.log_figure(figure, "persona_shares.png")
        plt.close(figure)
        model = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=PersonaModel.from_fit(fit),
            signature=SIGNATURE,
            input_example=memories.select(INPUT_COLUMNS).head(INPUT_EXAMPLE_ROWS).to_pandas(),
            pip_requirements=MODEL_REQUIREMENTS,
        )
        # Logged after the model, the metrics go to the run and to the model in one write; logged before it,
        # MLflow reads each metric's history back to copy it onto the model.
        mlflow.log_metrics(fit_metrics(fit))
    return register_day_model(tracking, model, day, sanity.passed, description)
