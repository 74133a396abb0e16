"""One MLflow run per fitted model date: settings, quality, the persona report, the share plot and the model.

`persona_model` hands each day's fit to a `FitLogger` as soon as it is fitted; the parameter,
metric and sanity helpers are plain functions of the fit.
"""

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from importlib.metadata import version
from logging.handlers import QueueHandler, QueueListener

import matplotlib
import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import polars as pl
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import Model

from dagster_project.processes import freeze_imports
from dagster_project.science.daily import WINDOW_ORDER, DayFit, PersonaSettings
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
SHARE_COLUMNS = ("event_date", "persona_id", "label", "share")
# An SVG whose text stays text (the browser sets it): 0.08 s to write against 0.20 s for a PNG, whose glyphs
# Agg renders one by one, and a third of the bytes. The MLflow UI shows it as an image, as it does a PNG.
SHARE_PLOT = "persona_shares.svg"
SHARE_PLOT_STYLE = {"svg.fonttype": "none"}
WORKER_MIN_DAYS = 8  # shorter ranges log in the step's own process (docs/performance.md)
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


@dataclass(frozen=True)
class RangeLog:
    """What every day of a range logs with: the store opened once for the whole range, not once per day."""

    tracking: MlflowStore
    experiment_id: str
    settings: PersonaSettings
    summaries: pl.DataFrame  # memory_id, summary of the range's windows: the report's evidence
    input_example: pd.DataFrame
    dagster_run_id: str


def open_range_log(
    tracking: MlflowStore, settings: PersonaSettings, memories: pl.DataFrame, dagster_run_id: str
) -> RangeLog:
    """Point MLflow at the home and make sure the registered model exists. The input example is the window's
    first memories in a fit's order: the table stores them in any order."""
    experiment_id = tracking.activate()
    ensure_registered_model(tracking, REGISTERED_MODEL_DESCRIPTION)
    first_memories = memories.bottom_k(INPUT_EXAMPLE_ROWS, by=list(WINDOW_ORDER)).sort(*WINDOW_ORDER)
    return RangeLog(
        tracking, experiment_id, settings, memories.select("memory_id", "summary"),
        first_memories.select(INPUT_COLUMNS).to_pandas(), dagster_run_id,
    )


class FitLogger:
    """Logs each fitted day as a run and a model version as the fits come, strictly in date order.

    With `WORKER_MIN_DAYS` days or more to fit, one worker process (spawned, at a lower priority) logs
    day D while the caller fits day D + 1: MLflow logging is GIL-bound Python, so a thread would not
    overlap it, and SQLite takes one writer, so one process logs every day in turn and version numbers
    follow the model dates. A shorter range logs in the caller, where the worker's start-up (importing
    MLflow, matplotlib and the science, 5-7 s under load) would cost about what the overlap saves.
    The store is opened at the first day logged.

    `memories`: the intent memories of the range's windows (evidence summaries, the input example);
    `earlier_shares`: the stored `personas` rows (event_date, persona_id, label, share) of the days
    before the range that its first windows reach back to; the range's own come from the fits logged;
    `dagster_run_id`: the run that fits, tagged so that recovering that run, dead, ends only its fits.
    Leaving the `with` block on an error cancels the days not started and waits for the one being
    logged, so no worker and no open MLflow run outlive the step; the worker's own error is raised
    by `log` or `versions`. The worker's log records are handled by the caller's loggers, as its own.
    """

    def __init__(
        self,
        tracking: MlflowStore,
        settings: PersonaSettings,
        memories: pl.DataFrame,
        earlier_shares: pl.DataFrame | None,
        dagster_run_id: str,
        days_to_fit: int,
    ) -> None:
        self._open_arguments = (tracking, settings, memories, dagster_run_id)
        self._in_worker = days_to_fit >= WORKER_MIN_DAYS
        self._window_days = settings.window_days
        self._shares = (pl.DataFrame(schema=dict.fromkeys(SHARE_COLUMNS)) if earlier_shares is None
                        else earlier_shares.select(SHARE_COLUMNS))  # then the last logged day's window
        self._versions: dict[date, Future | ModelVersion] = {}
        self._range: RangeLog | None = None
        self._worker: ProcessPoolExecutor | None = None
        self._opened: Future | None = None
        self._worker_logs: QueueListener | None = None

    def __enter__(self) -> "FitLogger":
        return self

    def __exit__(self, *_exc) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker_logs.stop()

    def log(self, fit: DayFit) -> None:
        """Log the day (after every day logged before it); raises a worker's error of an earlier day."""
        day = fit.personas["event_date"][0]
        self._shares = pl.concat([self._shares, fit.personas.select(SHARE_COLUMNS)], how="vertical_relaxed").filter(
            pl.col("event_date").is_between(day - timedelta(days=self._window_days - 1), day))
        if not self._in_worker:
            self._range = self._range or open_range_log(*self._open_arguments)
            self._versions[day] = _log_day_fit(self._range, fit, self._shares)
            return
        if self._worker is None:
            spawn = multiprocessing.get_context("spawn")
            records = spawn.Queue()
            self._worker_logs = QueueListener(records, _AsIfLoggedHere())
            self._worker_logs.start()
            self._worker = ProcessPoolExecutor(max_workers=1, mp_context=spawn, initializer=_start_worker,
                                               initargs=(records,))
            self._opened = self._worker.submit(_open_in_worker, *self._open_arguments)
        for logged in (self._opened, *self._versions.values()):
            if logged.done() and logged.exception() is not None:
                raise logged.exception()
        self._versions[day] = self._worker.submit(_log_in_worker, fit, self._shares)

    def versions(self) -> dict[date, ModelVersion]:
        """Each logged day's new model version, once every day is logged."""
        if self._opened is not None:
            self._opened.result()
        return {day: logged.result() if isinstance(logged, Future) else logged
                for day, logged in self._versions.items()}


class PyfuncWithoutServingCheck:
    """The `mlflow.pyfunc` flavor for `Model.log`, which skips its serving-input check when the flavor takes
    `validate_serving_input=False` (pyfunc's own `save_model` refuses the argument). The check loads the
    model back, checks its requirements and predicts on the input example, 0.15 s a day; the same model
    code is checked once in `tests/test_tracking.py`, which loads a logged model and predicts on its example.
    """

    __name__ = "mlflow.pyfunc"  # the flavor MLflow records

    @staticmethod
    def save_model(validate_serving_input: bool = True, **kwargs) -> None:
        mlflow.pyfunc.save_model(**kwargs)


class _AsIfLoggedHere(logging.Handler):
    """Hands a worker's record to the logger of its name here, as if logged here (where a `personas` command
    mutes MLflow's terminal output)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _start_worker(records: multiprocessing.Queue) -> None:
    """The worker's every log record and warning goes to `records` (the stream handlers libraries such as MLflow
    set on their loggers at import would write to the terminal behind the caller's back)."""
    for name in [None, *logging.root.manager.loggerDict]:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.getLogger().addHandler(QueueHandler(records))
    logging.captureWarnings(True)
    # Below the step in priority: the worker takes the cycles the fit leaves and, on a busy machine, catches up
    # while the step writes its tables, instead of slowing every fit (30 days: 1.39 s a day niced, 1.93 not).
    os.nice(10)
    freeze_imports()


_worker_range: RangeLog | None = None  # the range the worker process logs, set by its first task


def _open_in_worker(
    tracking: MlflowStore, settings: PersonaSettings, memories: pl.DataFrame, dagster_run_id: str
) -> None:
    """The worker's first task: open the range, and end the worker should the process that started it die
    (a killed step): recovery ends the runs it left open by their Dagster run tag."""
    global _worker_range
    _worker_range = open_range_log(tracking, settings, memories, dagster_run_id)
    parent_sentinel = multiprocessing.parent_process().sentinel
    threading.Thread(target=_exit_with, args=(parent_sentinel,), daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


def _log_in_worker(fit: DayFit, share_window: pl.DataFrame) -> ModelVersion:
    return _log_day_fit(_worker_range, fit, share_window)


def _log_day_fit(range_log: RangeLog, fit: DayFit, share_window: pl.DataFrame) -> ModelVersion:
    """One model date's run and model version.

    The share plot covers the model's own window, the model dates of [day - W + 1, day]: a plot of the
    whole history grows with every day (one more line and legend entry per persona id ever seen, 3 s a
    day to draw after 200 days) and its legend no longer fits the figure.
    The model is logged without MLflow's serving-input check (`PyfuncWithoutServingCheck`).
    """
    settings = range_log.settings
    day = fit.personas["event_date"][0]
    sanity = fit_sanity(fit.personas)
    description = fit_description(fit, settings, sanity)
    tags = {PARTITION_DATE_TAG: day.isoformat(), SANITY_TAG: str(sanity.passed).lower(),
            DAGSTER_RUN_TAG: range_log.dagster_run_id, DESCRIPTION_TAG: description}
    with mlflow.start_run(experiment_id=range_log.experiment_id, run_name=f"{RUN_NAME_PREFIX} {day}", tags=tags):
        mlflow.log_params(fit_params(fit, settings, day))
        mlflow.log_text(persona_report(day.isoformat(), fit.personas, range_log.summaries), "persona_report.md")
        if sanity.reasons:
            mlflow.log_text("\n".join(sanity.reasons) + "\n", "fit_sanity.txt")
        figure = share_history_figure(share_window)
        with matplotlib.rc_context(SHARE_PLOT_STYLE):
            mlflow.log_figure(figure, SHARE_PLOT)
        plt.close(figure)
        model = Model.log(
            artifact_path=None,
            name=MODEL_NAME,
            flavor=PyfuncWithoutServingCheck,
            python_model=PersonaModel.from_fit(fit),
            signature=SIGNATURE,
            input_example=range_log.input_example,
            pip_requirements=MODEL_REQUIREMENTS,
            validate_serving_input=False,
        )
        # Logged after the model, the metrics go to the run and to the model in one write; logged before it,
        # MLflow reads each metric's history back to copy it onto the model.
        mlflow.log_metrics(fit_metrics(fit))
    return register_day_model(range_log.tracking, model, day, sanity.passed, description)
