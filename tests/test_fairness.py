"""The fairness audit through the real graph: it warns on a planted under-representation, not on default data."""

import polars as pl
import pytest
from dagster import AssetCheckSeverity

from dagster_project.defs.monitoring.fairness import FAIRNESS_CHECK_NAME
from dagster_project.science.fairness import FairnessSettings, fairness_gaps
from generated_run import LAST, START, materialise_generated_home

UNDERREPRESENTED = ("north", "runner")


@pytest.fixture(scope="module")
def underrepresented_run(tmp_path_factory):
    return materialise_generated_home(tmp_path_factory.mktemp("underrepresented"), underrepresent=UNDERREPRESENTED)


def _fairness_verdicts(run) -> dict[str, object]:
    """The run's fairness check evaluations by partition day: one per day."""
    evaluations = [e for e in run.result.get_asset_check_evaluations() if e.check_name == FAIRNESS_CHECK_NAME]
    by_day = {evaluation.partition: evaluation for evaluation in evaluations}
    assert len(by_day) == len(evaluations)
    return by_day


def test_the_check_warns_about_the_persona_without_the_region_on_each_day_it_is_flagged(underrepresented_run):
    verdicts = _fairness_verdicts(underrepresented_run)
    assert sorted(verdicts) == [START.isoformat(), LAST.isoformat()]
    flagged = [row for row in underrepresented_run.fairness if row[-1]]
    assert flagged and all(row[2:4] == ("region", "north") and row[4] < -15 for row in flagged)
    assert len({row[1] for row in flagged}) == 1  # the one persona planted without the region, on every day flagged
    flagged_days = {row[0].isoformat() for row in flagged}
    assert {day for day, evaluation in verdicts.items() if not evaluation.passed} == flagged_days
    assert {evaluation.severity for evaluation in verdicts.values()} == {AssetCheckSeverity.WARN}
    day, persona_id = flagged[0][:2]
    evaluation = verdicts[day.isoformat()]
    gaps = evaluation.metadata["gaps"].value
    gap_key = f"persona {persona_id} region=north"
    assert gap_key in gaps and "points" in gaps[gap_key]
    assert f"persona {persona_id} (" in evaluation.metadata["breached"].value
    assert evaluation.metadata["flagged_rows"].value == sum(row[0] == day for row in flagged)


def test_the_check_passes_on_default_data(generated_run):
    verdicts = _fairness_verdicts(generated_run)
    assert sorted(verdicts) == [START.isoformat(), LAST.isoformat()]
    assert all(evaluation.passed for evaluation in verdicts.values()), {
        day: evaluation.metadata["gaps"].value for day, evaluation in verdicts.items()}
    assert {evaluation.metadata["breached"].value for evaluation in verdicts.values()} == {"none"}
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
