"""`personas scale-demo`: one sample through both deployment profiles, and the proof that they agree.

The sample is generated once and copied into two homes. The embedded home keeps Dagster and MLflow
in SQLite; the production home keeps them in a PostgreSQL server (its databases named by the
caller). Both then run every day with `personas run`'s own code (`run_partitions`, gates and
reruns around blocked days included), and the warehouses they wrote are compared table by table
(row count and an order-free hash of every row) with the persona catalogues. Days run one after
another in both homes: the warehouse is one DuckDB file, whose pool holds one slot (docs/scale.md).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from dagster_project.deploy.profile import (
    ARTIFACT_ROOT_ENV,
    DAGSTER_DB_URL_ENV,
    MLFLOW_DB_URL_ENV,
    PROFILE_ENV,
    PROFILE_FILE,
)
from dagster_project.paths import activate_home, warehouse_path

# The tables a run writes from the landing lines to the personas and their evaluation (not `persona_kpis`, which
# records how long the run took); equal row counts and hash sums say every row is equal.
COMPARED_TABLES = ("rejected_events", "fct_events", "dim_customers", "dim_persons", "dim_person_identifiers",
                   "intent_memories", "memory_assignments", "personas", "persona_parents", "user_personas",
                   "persona_lineage", "persona_utility", "persona_utility_hits", "persona_drift", "persona_fairness")
PROFILE_VARIABLES = (PROFILE_ENV, DAGSTER_DB_URL_ENV, MLFLOW_DB_URL_ENV, ARTIFACT_ROOT_ENV)


@dataclass(frozen=True)
class ProfileRun:
    """What one profile's run of the sample gave."""

    profile: str
    home: Path
    seconds: float
    success: bool
    catalogue: str
    checksums: dict[str, tuple[int, str]]  # table: (rows, sum of the rows' hashes as text)


def table_checksums(warehouse: Path, tables: tuple[str, ...] = COMPARED_TABLES) -> dict[str, tuple[int, str]]:
    """(rows, sum of the rows' hashes) of each table present: equal for equal contents in any order."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        present = {row[0] for row in connection.execute("select table_name from duckdb_tables()").fetchall()}
        return {table: connection.execute(
                    f"select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar from {table} as t").fetchone()
                for table in tables if table in present}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The profile variables set to `values` (others unset) for the block, restored after it."""
    saved = {name: os.environ.get(name) for name in PROFILE_VARIABLES}
    for name in PROFILE_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_home(profile: str, home: Path, start: date, last: date, verbose: bool) -> ProfileRun:
    from dagster_project.cli import run_partitions
    from dagster_project.summary import persona_catalogue

    activate_home(home)
    started = time.perf_counter()
    outcome = run_partitions(home, start, last, verbose=verbose)
    seconds = time.perf_counter() - started
    return ProfileRun(profile, home, seconds, outcome.success, persona_catalogue(home),
                      table_checksums(warehouse_path(home)))


def run_both_profiles(root: Path, generate_options: dict, dagster_db_url: str, mlflow_db_url: str,
                      verbose: bool = False) -> tuple[ProfileRun, ProfileRun]:
    """Generate the sample under `root`/embedded, copy it to `root`/production, run both; (embedded, production).
    `root` is deleted first: every scale demo starts from the same two empty homes.

    `generate_options` are `generator.generate`'s keyword arguments (days, people, events_per_day, seed,
    start_date, ...); the two URLs name empty PostgreSQL databases (`postgresql+psycopg2://...`).
    """
    from dagster_project.generator import generate

    embedded, production = root / "embedded", root / "production"
    shutil.rmtree(root, ignore_errors=True)
    generate(embedded, **generate_options)
    shutil.copytree(embedded, production)
    (production / PROFILE_FILE).write_text(
        f'profile = "production"\n[production]\nartifact_root = "{production / "mlflow-artifacts"}"\n')
    start = generate_options["start_date"]
    last = start + timedelta(days=generate_options["days"] - 1)
    with _environment({PROFILE_ENV: "embedded"}):
        embedded_run = _run_home("embedded", embedded, start, last, verbose)
    with _environment({PROFILE_ENV: "production", DAGSTER_DB_URL_ENV: dagster_db_url, MLFLOW_DB_URL_ENV: mlflow_db_url}):
        production_run = _run_home("production", production, start, last, verbose)
    return embedded_run, production_run


def comparison_lines(embedded: ProfileRun, production: ProfileRun) -> list[str]:
    """One line per compared table: its rows and whether the two warehouses hold the same ones."""
    lines = []
    for table in sorted(set(embedded.checksums) | set(production.checksums), key=COMPARED_TABLES.index):
        left, right = embedded.checksums.get(table), production.checksums.get(table)
        verdict = "identical" if left == right else f"DIFFERENT (embedded {left}, production {right})"
        rows = f"{right[0]:,}" if right else "missing"
        lines.append(f"  {table:<24} {rows:>10} rows  {verdict}")
    return lines
