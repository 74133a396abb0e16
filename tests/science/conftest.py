"""Fixtures shared by the science tests."""

import polars as pl
import pytest
import science_builders


@pytest.fixture
def two_persona_events() -> pl.DataFrame:
    return science_builders.two_persona_events()
