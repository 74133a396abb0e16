"""A persona planted on the drift day (issue 22): the real pipeline over a small world that gains one, and
what `personas evaluate` says of when the model found it."""

from datetime import date, timedelta

import pytest
from dagster import AssetSelection

from dagster_project.evaluation import BIRTH_GRACE_DAYS, evaluate
from dagster_project.generator import generate
from pipeline_helpers import materialize_range, query, using_home

START = date(2026, 10, 1)
DAYS, DRIFT_DAY = 5, 2  # drift on the third day: two days before it to learn the personas, two after to find it
DRIFT_DATE = START + timedelta(days=DRIFT_DAY)
LAST = START + timedelta(days=DAYS - 1)
# Lineage is written by the persona model; what only aggregates it (utility, drift, KPIs...) is left out.
PERSONA_ASSETS = AssetSelection.all() - AssetSelection.assets(
    "persona_utility", "persona_drift", "champion_model", "persona_fairness", "persona_kpis", "webhook_events")


@pytest.fixture(scope="module")
def planted_home(tmp_path_factory):
    """The easy world (one persona per category: nothing but the new persona to find), 600 people, 5 days."""
    with using_home(tmp_path_factory.mktemp("new_persona")) as home:
        generate(home, days=DAYS, people=600, events_per_day=3000, seed=7, start_date=START, drift_day=DRIFT_DAY,
                 world="easy", new_persona_at_drift=True)
        materialize_range(START, LAST, selection=PERSONA_ASSETS)
        yield home, evaluate(home)


def test_evaluate_reports_the_planted_persona_as_the_lineage_records_it(planted_home):
    _, report = planted_home
    assert report["new_persona"] == "home_improver" and report["new_persona_planted_on"] == DRIFT_DATE.isoformat()
    assert set(report["new_persona_ids_by_day"]) == {(DRIFT_DATE + timedelta(days=n)).isoformat() for n in range(3)}
    persona_id = report["new_persona_id"]
    assert report["new_persona_ids_by_day"][LAST.isoformat()] == persona_id
    first_day, first_event = query(
        "select event_date, event from persona_lineage where level = 'persona' and persona_id = ? "
        "order by event_date limit 1", [persona_id])[0]
    assert (report["new_persona_born_on"], report["new_persona_birth_event"]) == (first_day.isoformat(), first_event)
    assert report["new_persona_birth_lag_days"] == (first_day - DRIFT_DATE).days
    assert report["new_persona_recall"] >= 0.9  # by the last day one persona holds (nearly) all of its memories
    assert report["new_persona_label"] == query(
        "select label from personas where event_date = ? and persona_id = ?", [LAST, persona_id])[0][0]
    assert report["spurious_births"] == report["spurious_retirements"] == 0


def test_new_persona_is_born_within_two_days_of_the_drift_and_nothing_else_is(planted_home):
    _, report = planted_home
    assert report["new_persona_birth_event"] == "born"
    assert 0 <= report["new_persona_birth_lag_days"] <= BIRTH_GRACE_DAYS and report["new_persona_born_on_time"]
    later_births = query("select persona_id from persona_lineage where level = 'persona' and event = 'born' "
                         "and event_date > ?", [START])
    assert later_births == [(report["new_persona_id"],)] and report["other_births_near_drift"] == 0
