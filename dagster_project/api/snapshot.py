"""What the API serves, copied out of the warehouse and the MLflow registry into memory.

DuckDB admits one writing process or many reading ones per file, and the pipeline opens
the warehouse for writing during its runs. The API therefore never keeps the file open:
`load_snapshot` opens it read-only (retrying for a while if a run holds the write lock),
copies the champion model's date into polars frames keyed by person, closes it, and
only then fits and indexes what it copied.

Everything is taken as of the champion's partition date D, so the catalogue, the people's
personas and the model that assigns posted events agree on persona ids and labels even
when later days were fitted but not (yet) promoted.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import get_type_hints

import duckdb
import mlflow
import polars as pl

from dagster_project.deploy import active_profile
from dagster_project.paths import mlflow_dir, warehouse_path
from dagster_project.privacy.pii import pii_hash
from dagster_project.review.overrides import COMPUTED
from dagster_project.science.daily import PersonaSettings, memory_weights
from dagster_project.science.intent_families import fit_intent_families
from dagster_project.science.segmentation import IntentModel
from dagster_project.tracking.model import PersonaModel
from dagster_project.tracking.registry import PARTITION_DATE_TAG, current_champion
from dagster_project.tracking.store import MlflowStore

LOCK_RETRY_SECONDS = 0.5
# Identity nodes a caller may name instead of a person id; handles are stored hashed.
CLEAR_IDENTIFIER_KINDS = ("cookie", "customer", "device")
HASHED_IDENTIFIER_KINDS = ("handle",)


class SnapshotUnavailable(RuntimeError):
    """Nothing to serve: no warehouse or champion model yet, or the warehouse stayed locked by a run."""


@dataclass(frozen=True)
class Champion:
    """The registry's champion version, loaded once and kept in memory with the settings it was fitted with."""

    version: str
    as_of: date
    model: PersonaModel
    settings: PersonaSettings


@dataclass(frozen=True)
class Snapshot:
    """The champion's day of the warehouse, in memory; never mutated, replaced whole on reload."""

    champion: Champion
    catalogue: list[dict]
    persona_terms: pl.DataFrame
    window_memories: dict[str, pl.DataFrame]
    empty_window: pl.DataFrame
    user_personas: dict[str, pl.DataFrame]
    persons: frozenset[str]
    identifiers: dict[str, str]
    intent_model: IntentModel
    intent_families: dict[str, str]
    posted_memory_weight: float
    fingerprint: tuple[int, ...]
    loaded_at: datetime

    def resolve_person(self, reference: str) -> str | None:
        """The person id behind a person id or an identity node (`customer:C1`, `cookie:…`, `handle:@name`)."""
        if reference in self.persons:
            return reference
        kind, _, value = reference.partition(":")
        if kind in CLEAR_IDENTIFIER_KINDS:
            return self.identifiers.get(reference)
        if kind in HASHED_IDENTIFIER_KINDS:
            return self.identifiers.get(f"{kind}:{pii_hash(value.lstrip('@'))}")
        return None

    def window_of(self, person_id: str) -> pl.DataFrame:
        """The person's memories in the model date's window, with persona, distance and recency weight."""
        return self.window_memories.get(person_id, self.empty_window)


def source_fingerprint(home: Path) -> tuple[int, ...]:
    """Modification times and sizes of the warehouse and the MLflow store: a change means there may be news.

    A PostgreSQL store (the production profile) has no file to watch: the champion's version stands in.
    """
    files = (warehouse_path(home),) if active_profile(home).is_production else (
        warehouse_path(home), mlflow_dir(home) / "mlflow.db")
    stamps = tuple(
        value for path in files
        for value in ((path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else (0, 0))
    )
    if not active_profile(home).is_production:
        return stamps
    champion = current_champion(MlflowStore())
    return (*stamps, int(champion.version) if champion is not None else 0)


def settings_from_params(params: dict[str, str]) -> PersonaSettings:
    """The settings the champion was fitted with (its run's parameters); defaults for any not logged."""
    types = get_type_hints(PersonaSettings)  # the declared types: a float knob may have an int default (30)
    return PersonaSettings(**{
        field.name: types[field.name](params[field.name])
        for field in dataclasses.fields(PersonaSettings)
        if field.name in params
    })


def load_champion(tracking: MlflowStore, loaded: Champion | None = None) -> Champion:
    """The champion version of `persona-model`; `loaded` is reused when the alias has not moved."""
    tracking.activate()
    version = current_champion(tracking)
    if version is None:
        raise SnapshotUnavailable(
            f"no '{tracking.registered_model_name}@champion' in {tracking.display_uri}: run the pipeline first "
            "(`personas run --start D`)"
        )
    if loaded is not None and loaded.version == str(version.version):
        return loaded
    model = mlflow.pyfunc.load_model(f"models:/{tracking.registered_model_name}/{version.version}")
    params = tracking.client().get_run(version.run_id).data.params
    return Champion(
        version=str(version.version),
        as_of=date.fromisoformat(version.tags[PARTITION_DATE_TAG]),
        model=model.unwrap_python_model(),
        settings=settings_from_params(params),
    )


def _connect_read_only(path: Path, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """A read-only connection, retried while a pipeline run holds the write lock."""
    if not path.exists():
        raise SnapshotUnavailable(f"no warehouse at {path}: run the pipeline first (`personas run --start D`)")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise SnapshotUnavailable(
                    f"{path} stayed locked for writing (a pipeline run?) for {wait_seconds:.0f}s; "
                    "still serving the previous snapshot, if any"
                ) from error
            time.sleep(LOCK_RETRY_SECONDS)


SNAPSHOT_TABLES = ("personas", "user_personas", "memory_assignments", "intent_memories", "fct_events", "dim_persons",
                   "dim_person_identifiers")


def _read_day(path: Path, as_of: date, wait_seconds: float) -> dict[str, pl.DataFrame]:
    """The rows of model date `as_of`, fetched in one short read-only session."""
    queries = {
        "personas": ("select * exclude (event_date) from personas where event_date = $day order by persona_id", True),
        "user_personas": ("select * exclude (event_date) from user_personas where event_date = $day", True),
        "window": (
            """select m.memory_id, m.person_id, m.event_date, m.start_ts, m.intent, m.sources, m.summary, m.text,
                      a.persona_id, a.distance
               from memory_assignments a join intent_memories m using (memory_id)
               where a.event_date = $day""",
            True,
        ),
        # The intent model and families of the pipeline's day D (or the last day with events before it).
        "events": (
            """select event_id, person_id, ts, category, text from fct_events
               where event_date = (select max(event_date) from fct_events where event_date <= $day)""",
            True,
        ),
        "persons": ("select person_id from dim_persons", False),
        "identifiers": ("select identifier, person_id from dim_person_identifiers", False),
    }
    connection = _connect_read_only(path, wait_seconds)
    try:
        existing = {row[0] for row in connection.execute("select table_name from information_schema.tables").fetchall()}
        missing = sorted({*SNAPSHOT_TABLES} - existing)
        if missing:
            raise SnapshotUnavailable(
                f"{path} has no {', '.join(missing)} (never materialised, or a run failed before them): "
                f"run the pipeline over the champion's day first (`personas run --start {as_of}`)"
            )
        return {
            name: connection.sql(sql, params={"day": as_of} if dated else None).pl()
            for name, (sql, dated) in queries.items()
        }
    finally:
        connection.close()


def _catalogue(personas: pl.DataFrame, window: pl.DataFrame) -> list[dict]:
    """JSON-ready persona rows whose evidence carries each memory's readable summary."""
    summaries = dict(zip(window["memory_id"], window["summary"], strict=True))
    return [
        {
            **{key: value for key, value in row.items() if key != "evidence_memory_ids"},
            "evidence": [{"memory_id": memory_id, "summary": summaries.get(memory_id)}
                         for memory_id in row["evidence_memory_ids"]],
        }
        for row in personas.iter_rows(named=True)
    ]


def _with_computed_label(personas: pl.DataFrame) -> pl.DataFrame:
    """`computed_label` and `label_source` beside `label`, also for rows written before human labels existed."""
    if "computed_label" not in personas.columns:
        personas = personas.with_columns(computed_label=pl.lit(None, pl.String), label_source=pl.lit(None, pl.String))
    return personas.with_columns(
        computed_label=pl.col("computed_label").fill_null(pl.col("label")),
        label_source=pl.col("label_source").fill_null(pl.lit(COMPUTED)),
    )


def _by_person(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {key[0]: rows for key, rows in frame.partition_by("person_id", as_dict=True).items()}


def load_snapshot(home: Path, loaded: Snapshot | None = None, lock_wait_seconds: float = 10.0) -> Snapshot:
    """Read the champion's day into memory; the warehouse is open only while its rows are fetched."""
    fingerprint = source_fingerprint(home)
    champion = load_champion(MlflowStore(), loaded.champion if loaded else None)
    settings = champion.settings
    rows = _read_day(warehouse_path(home), champion.as_of, lock_wait_seconds)
    window = rows["window"].with_columns(weight=pl.Series(memory_weights(rows["window"], champion.as_of, settings)))
    events = rows["events"]
    personas = _with_computed_label(rows["personas"])
    newest_weight = window["weight"].max()
    return Snapshot(
        champion=champion,
        catalogue=_catalogue(personas, window),
        persona_terms=personas.select("persona_id", "label", "top_terms"),
        window_memories=_by_person(window),
        empty_window=window.clear(),
        user_personas=_by_person(rows["user_personas"]),
        persons=frozenset(rows["persons"]["person_id"].to_list()),
        identifiers=dict(zip(rows["identifiers"]["identifier"], rows["identifiers"]["person_id"], strict=True)),
        intent_model=IntentModel().fit(events["text"], events["category"]),
        intent_families=fit_intent_families(events, settings.gap_minutes),
        # A posted memory counts as much as one of the model date's most recent memories (only a
        # person's relative weights matter, so any positive weight will do for an empty window).
        posted_memory_weight=float(newest_weight) if newest_weight else 1.0,
        fingerprint=fingerprint,
        loaded_at=datetime.now(UTC),
    )
