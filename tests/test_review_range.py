"""A backfilled history's drift reviews decided in one command: `personas review approve DAY --through LAST`."""

from datetime import date, timedelta

from dagster import AssetSelection, materialize

from dagster_project.cli import main
from dagster_project.definitions import defs
from dagster_project.generator import generate
from dagster_project.review.actions import champion_status
from dagster_project.review.store import APPROVED, PENDING, REJECTED
from dagster_project.science.drift import DRIFT_METRICS, MIN_HISTORY_DAYS
from dagster_project.tracking.registry import DECISION_TAG, PARTITION_DATE_TAG, current_champion, newest_versions
from dagster_project.tracking.store import MlflowStore
from pipeline_helpers import query, using_home

START = date(2026, 10, 1)
DAYS = [START + timedelta(days=offset) for offset in range(6)]
EVERY_DAY_BREACHES = {metric: -1.0 for metric in DRIFT_METRICS}  # every metric is >= 0: each judged day breaches


def test_a_range_of_pending_reviews_is_approved_in_date_order_and_the_rest_stays_pending(tmp_path, capsys):
    with using_home(tmp_path) as home:
        generate(home, days=len(DAYS), people=300, events_per_day=1500, seed=5, start_date=START, world="easy")
        result = materialize(
            defs.assets, selection=AssetSelection.all() - AssetSelection.assets("persona_utility"),
            resources=defs.resources, run_config={"ops": {"persona_drift": {"config": EVERY_DAY_BREACHES}}},
            tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                  "dagster/asset_partition_range_end": DAYS[-1].isoformat()},
        )
        assert result.success
        judged = DAYS[MIN_HISTORY_DAYS:]  # the days before are the model's warm-up
        assert query("select day, status from persona_reviews order by day") == [(day, PENDING) for day in judged]
        tracking = MlflowStore()
        assert current_champion(tracking).tags[PARTITION_DATE_TAG] == DAYS[MIN_HISTORY_DAYS - 1].isoformat()
        status = champion_status(home)
        assert f"`personas review approve {judged[0]} --through {judged[-1]}` approves them all" in status

        capsys.readouterr()
        assert main(["review", "approve", judged[0].isoformat(), "--through", judged[-2].isoformat(),
                     "--by", "ann", "--home", str(home)]) == 0
        printed = capsys.readouterr().out
        assert printed.index(f"Review of {judged[0]}") < printed.index(f"Review of {judged[-2]}")
        # Each day is judged once, under the latest review of the range on or before it: the day behind the
        # review left pending is held once, not once per approval before it.
        assert printed.index(f"  {judged[-2]}: version") > printed.index(f"Review of {judged[-2]}")
        assert printed.count(f"  {judged[-1]}: version") == 1
        assert f"  {judged[-1]}: version" in printed.split(f"Review of {judged[-2]}")[1]
        assert newest_versions(tracking)[judged[-1]].tags[DECISION_TAG] == "held"
        assert current_champion(tracking).tags[PARTITION_DATE_TAG] == judged[-2].isoformat()
        assert query("select day, status, decided_by from persona_reviews order by day") == [
            *[(day, APPROVED, "ann") for day in judged[:-1]], (judged[-1], PENDING, None)]

        assert main(["review", "approve", DAYS[0].isoformat(), "--through", DAYS[1].isoformat(),
                     "--home", str(home)]) == 2
        assert f"no pending drift review from {DAYS[0]} through {DAYS[1]}" in capsys.readouterr().err

        # A rejection releases nothing: the alias stays, the day stays held.
        assert main(["review", "reject", judged[-1].isoformat(), "--through", judged[-1].isoformat(),
                     "--by", "bob", "--home", str(home)]) == 0
        assert f"Champion: version {newest_versions(tracking)[judged[-2]].version} ({judged[-2]})" in capsys.readouterr().out
        assert query("select status, decided_by from persona_reviews where day = ?", [judged[-1]]) == [(REJECTED, "bob")]
        assert current_champion(tracking).tags[PARTITION_DATE_TAG] == judged[-2].isoformat()
        assert newest_versions(tracking)[judged[-1]].tags[DECISION_TAG] == "held"
