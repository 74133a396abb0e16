"""Every test works in its own PERSONAS_HOME; nothing touches the developer's ./.personas."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# `make test` exports the developer's home; a test activates its own (`home`, `using_home`). Until then the code
# location, whose partitions start at the home's first data day, loads against a home that holds nothing.
os.environ["PERSONAS_HOME"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "no-home")
for inherited in ("DAGSTER_HOME", "PERSONAS_WAREHOUSE"):
    os.environ.pop(inherited, None)

from browser_support import Browser, ensure_chromium  # noqa: E402
from generated_run import GeneratedRun, materialise_generated_home  # noqa: E402
from pipeline_helpers import using_home  # noqa: E402


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with using_home(tmp_path / "home") as activated:
        yield activated


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> GeneratedRun:
    """Two days of generated data (easy world, 1,300 people) through every person-level asset and the fairness audit.

    Shared by several modules, to pay for one pipeline run per test worker process instead of one per module
    (`make test` runs two workers). Read it only: a test that changes a home (erasure, the explorer's
    serving) copies it first, so no module depends on the order the modules run in.
    """
    return materialise_generated_home(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for one test module; the module is skipped, with the reason, where none can be had."""
    reason = ensure_chromium()
    if reason:
        pytest.skip(reason)
    with Browser() as opened:
        yield opened
