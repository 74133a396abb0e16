"""`persona_kpis` in the shared generated run: every KPI of each day written, latency measured, one check verdict per day."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

from dagster import AssetMaterialization, AssetRecordsFilter, DagsterInstance

from dagster_project.defs.monitoring.kpis import KPI_CHECK_NAME, VISIBLE_ASSET, visible_times
from generated_run import LAST, START
from pipeline_helpers import query, using_home


def test_each_day_has_its_kpis_with_latency_from_landing_to_visible_personas(generated_run):
    with using_home(generated_run.home):
        rows = {(day, kpi): value for day, kpi, value in query("select event_date, kpi, value from persona_kpis")}
        breached = dict(query("select event_date::varchar, bool_or(breached) from persona_kpis group by all"))
    assert {day for day, _ in rows} == {START, LAST}
    for day in (START, LAST):
        # the files landed before the run, and the run's own user_personas materialisation is the visible time
        assert 0 < rows[(day, "update_latency_p50_seconds")] <= rows[(day, "update_latency_p95_seconds")]
        assert rows[(day, "event_age_p95_seconds")] > rows[(day, "update_latency_p95_seconds")]
        assert 0 <= rows[(day, "cross_channel_consistency")] <= 1
        assert rows[(day, "multichannel_people")] > 0
        # persona_utility is not part of the fixture's selection: no utility, so no lift, rather than a made-up one
        assert rows[(day, "lift_over_ablation")] is None

    # One evaluation per day, each with that day's own verdict: failed exactly when a KPI of the day breached.
    evaluations = [e for e in generated_run.result.get_asset_check_evaluations() if e.check_name == KPI_CHECK_NAME]
    assert sorted(evaluation.partition for evaluation in evaluations) == [START.isoformat(), LAST.isoformat()]
    for evaluation in evaluations:
        assert evaluation.passed is not breached[evaluation.partition], evaluation.metadata["breached"].value
        assert (evaluation.metadata["breached"].value == "none") is evaluation.passed
        # a pass says which KPIs it could not judge: without utility, no lift
        assert {"lift_over_ablation", "lift_over_popularity"} <= set(evaluation.metadata["not_measured"].value.split(", "))


def test_a_day_materialised_many_times_leaves_the_other_days_their_visible_time():
    """The latest `user_personas` materialisation of each day is found however many newer ones another day has."""
    quiet, busy, never = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
    with DagsterInstance.ephemeral() as instance:
        for day in [quiet] + [busy] * 150:  # more than one page of newer records of the busy day
            instance.report_runless_asset_event(AssetMaterialization(VISIBLE_ASSET, partition=day.isoformat()))
        newest = instance.fetch_materializations(AssetRecordsFilter(asset_key=VISIBLE_ASSET), limit=1).records[0]
        visible = visible_times(SimpleNamespace(instance=instance), [quiet, busy, never])
    assert visible.keys() == {quiet, busy}
    assert visible[quiet] < visible[busy] == datetime.fromtimestamp(newest.timestamp, UTC).replace(tzinfo=None)
