"""Every test works in its own PERSONAS_HOME; nothing touches the developer's ./.personas."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dagster_project.paths import activate_home

ENV_KEYS = ("PERSONAS_HOME", "DAGSTER_HOME", "PERSONAS_WAREHOUSE")


@contextmanager
def using_home(home: Path) -> Iterator[Path]:
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    try:
        yield activate_home(home)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pytest_configure(config: pytest.Config) -> None:
    # Importing the code location activates a home: point it at a throwaway one.
    session_home = Path(config.rootpath) / ".pytest_cache" / "import-home"
    os.environ["PERSONAS_HOME"] = str(session_home)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with using_home(tmp_path / "home") as activated:
        yield activated
