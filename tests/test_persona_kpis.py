"""`persona_kpis` in the shared generated run: every KPI of each day written, latency measured, check reported."""

from dagster_project.kpis.assets import KPI_CHECK_NAME
from generated_run import LAST, START
from pipeline_helpers import query, using_home


def test_each_day_has_its_kpis_with_latency_from_landing_to_visible_personas(generated_run):
    with using_home(generated_run.home):
        rows = {(day, kpi): value for day, kpi, value in query("select event_date, kpi, value from persona_kpis")}
    assert {day for day, _ in rows} == {START, LAST}
    for day in (START, LAST):
        # the files landed before the run, and the run's own user_personas materialisation is the visible time
        assert 0 < rows[(day, "update_latency_p50_seconds")] <= rows[(day, "update_latency_p95_seconds")]
        assert rows[(day, "event_age_p95_seconds")] > rows[(day, "update_latency_p95_seconds")]
        assert 0 <= rows[(day, "cross_channel_consistency")] <= 1
        assert rows[(day, "multichannel_people")] > 0
        # persona_utility is not part of the fixture's selection: no utility, so no lift, rather than a made-up one
        assert rows[(day, "lift_over_ablation")] is None
    (check,) = [e for e in generated_run.result.get_asset_check_evaluations() if e.check_name == KPI_CHECK_NAME]
    assert check.metadata["breached_days"].value in ("none", *(str(day) for day in (START, LAST)))
