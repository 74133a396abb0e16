"""Every test works in its own PERSONAS_HOME; nothing touches the developer's ./.personas."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Importing the code location activates a home: point it at a throwaway one first.
os.environ["PERSONAS_HOME"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "import-home")

from pipeline_helpers import using_home  # noqa: E402


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with using_home(tmp_path / "home") as activated:
        yield activated
