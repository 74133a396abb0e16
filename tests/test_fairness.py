"""The fairness audit through the real graph: it warns on a planted under-representation, not on default data."""

import polars as pl
import pytest
from dagster import AssetCheckSeverity

from dagster_project.fairness.assets import FAIRNESS_CHECK_NAME
from dagster_project.science.fairness import FairnessSettings, fairness_gaps
from generated_run import LAST, materialise_generated_home

UNDERREPRESENTED = ("north", "runner")


@pytest.fixture(scope="module")
def underrepresented_run(tmp_path_factory):
    return materialise_generated_home(tmp_path_factory.mktemp("underrepresented"), underrepresent=UNDERREPRESENTED)


def _fairness_check(run):
    (evaluation,) = [e for e in run.result.get_asset_check_evaluations() if e.check_name == FAIRNESS_CHECK_NAME]
    return evaluation


def test_the_check_warns_about_the_persona_without_the_region(underrepresented_run):
    evaluation = _fairness_check(underrepresented_run)
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    flagged = [row for row in underrepresented_run.fairness if row[-1]]
    assert flagged and all(row[2:4] == ("region", "north") and row[4] < -15 for row in flagged)
    assert len({row[1] for row in flagged}) == 1  # the one persona planted without the region, on every day flagged
    gaps = evaluation.metadata["gaps"].value
    day, persona_id = flagged[0][:2]
    gap_key = f"{day} persona {persona_id} region=north"
    assert gap_key in gaps and "points" in gaps[gap_key]


def test_the_check_passes_on_default_data(generated_run):
    evaluation = _fairness_check(generated_run)
    assert evaluation.passed, evaluation.metadata["gaps"].value
    assert generated_run.fairness and not any(row[-1] for row in generated_run.fairness)


def test_every_region_gets_a_row_even_at_share_zero():
    memberships = pl.DataFrame({"event_date": [LAST] * 4, "person_id": ["a", "b", "c", "d"],
                                "persona_id": [1, 1, 2, 2], "weight": [1.0] * 4})
    attributes = pl.DataFrame({"person_id": ["a", "b", "c", "d"], "region": ["north", "north", "south", "south"],
                               "age_band": [None] * 4})
    gaps = fairness_gaps(memberships, attributes, FairnessSettings(max_gap_points=15, min_z=0))
    assert gaps.filter(persona_id=1, value="south")["persona_share"].item() == 0.0
    assert gaps.filter(persona_id=1, value="south")["gap_points"].item() == pytest.approx(-50.0)
    assert gaps["flagged"].all()
    assert set(gaps["attribute"]) == {"region"}  # unknown age bands are left out, not counted as a value
