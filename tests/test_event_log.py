"""Dagster's event log: no fsync for Dagster's SQLite files, full fsync for every other SQLite store."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from dagster_project.resources.event_log import SYNC_SETTING, lighten_event_log

SQLITE_SYNC_LEVELS = {0: "off", 1: "normal", 2: "full"}


def synchronous_of(path) -> str:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.connect() as connection:
        level = connection.execute(text("pragma synchronous")).scalar()
    engine.dispose()
    return SQLITE_SYNC_LEVELS[level]


def test_only_databases_under_dagster_home_skip_fsync(tmp_path, monkeypatch):
    dagster_home = tmp_path / "home" / "dagster"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    lighten_event_log()
    lighten_event_log()  # idempotent: one listener
    assert synchronous_of(dagster_home / "runs.db") == "off"
    assert synchronous_of(tmp_path / "home" / "mlflow.db") == "full"
    monkeypatch.setenv(SYNC_SETTING, "full")
    assert synchronous_of(dagster_home / "index.db") == "full"
    monkeypatch.setenv(SYNC_SETTING, "sometimes")
    with pytest.raises(ValueError, match=SYNC_SETTING):
        synchronous_of(dagster_home / "index.db")
