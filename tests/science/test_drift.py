"""Day-over-day drift metrics on small hand-made frames and arrays."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from science_builders import COOKING_WORDS, TENNIS_WORDS

from dagster_project.science.drift import (
    DRIFT_METRICS,
    DayDrift,
    DriftThresholds,
    centroid_shifts,
    day_drift,
    drift_rows,
    moved_personas,
    new_persona_uptake,
    population_stability_index,
    psi_chance_floor,
    top_persona_churn,
    uptake_chance_floor,
)

DAY = dt.date(2026, 10, 10)


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift():
    assert population_stability_index([2, 2], [1, 1]) == pytest.approx(0.0)
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert population_stability_index([2, 2], [1, 3]) == pytest.approx(expected)
    assert population_stability_index([2, 2], [0, 4]) > population_stability_index([2, 2], [1, 3])


def test_psi_smooths_a_persona_missing_on_one_day_with_epsilon():
    smoothed = population_stability_index([1, 0], [1, 1], epsilon=1e-4)
    assert np.isfinite(smoothed)
    assert smoothed == pytest.approx((0.5 - 1) * np.log(0.5) + (0.5 - 1e-4) * np.log(0.5 / 1e-4))
    assert population_stability_index([0, 0], [1, 1]) == 0.0


def test_centroid_shift_measures_how_far_a_personas_members_moved():
    vectors = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))
    yesterday = np.array([1, 1, 2, 2, -1])
    today = np.array([1, 1, 2, 1, 2])
    shifts = centroid_shifts(vectors, yesterday, today)
    assert set(shifts) == {1, 2}
    assert shifts[1] == pytest.approx(1 - 2 / np.sqrt(5))  # [1, 0] -> [2, 1] normalised
    assert shifts[2] == pytest.approx(1 - np.sqrt(0.5))  # [0, 1] -> [1, 1] normalised
    assert centroid_shifts(vectors, np.array([1, 1, 1, 1, 1]), np.array([1, 1, 1, 1, 1])) == {1: pytest.approx(0.0)}


def test_churn_counts_people_present_both_days_whose_top_persona_changed():
    yesterday = pl.DataFrame({"person_id": ["a", "a", "b", "c"], "persona_id": [1, 2, 1, 1], "weight": [0.7, 0.3, 1.0, 1.0]})
    today = pl.DataFrame({"person_id": ["a", "a", "b", "d"], "persona_id": [1, 2, 1, 2], "weight": [0.4, 0.6, 1.0, 1.0]})
    assert top_persona_churn(yesterday, today) == pytest.approx(0.5)
    tied = pl.DataFrame({"person_id": ["a", "a"], "persona_id": [2, 1], "weight": [0.5, 0.5]})
    assert top_persona_churn(tied, tied.reverse()) == 0.0


def _memories(person: str, persona_ids: list[int], first_day: dt.date) -> list[dict]:
    return [{"person_id": person, "event_date": first_day + dt.timedelta(days=offset), "persona_id": persona_id}
            for offset, persona_id in enumerate(persona_ids)]


def test_uptake_counts_established_people_whose_day_falls_in_a_persona_new_to_them():
    start = DAY - dt.timedelta(days=3)
    assigned = pl.DataFrame(
        _memories("taker", [1, 1, 1, 2], start)
        + _memories("loyal", [1, 2, 1, 2], start)
        + _memories("newcomer", [1, 1, 3], DAY - dt.timedelta(days=2))
    )
    share, uptakes = new_persona_uptake(assigned, DAY, min_history_days=3)
    assert share == pytest.approx(0.5)
    assert uptakes.rows() == [("taker", 2)]
    assert new_persona_uptake(assigned, DAY, min_history_days=2)[0] == pytest.approx(2 / 3)


def _window(day: dt.date, days: int = 5) -> pl.DataFrame:
    """Ten people a day, even ones in tennis (persona 1), odd ones in cooking (persona 2)."""
    rng = np.random.default_rng(3)
    rows = []
    for offset in range(days):
        for person in range(10):
            words, persona_id = (TENNIS_WORDS, 1) if person % 2 == 0 else (COOKING_WORDS, 2)
            rows.append({
                "memory_id": f"m{offset}-{person}", "person_id": f"p{person}",
                "event_date": day - dt.timedelta(days=days - 1 - offset),
                "text": " ".join(rng.choice(words, 3, replace=False)), "intent": "tennis" if persona_id == 1 else "kitchen",
                "sources": ["web"], "persona_id": persona_id,
            })
    return pl.DataFrame(rows)


def _golf_retires_chess_appears(lineage: pl.DataFrame | None = None):
    """Drift of a day on which persona 3 (golf) is gone, 4 (chess) is new and 2 is relabelled."""
    window = _window(DAY)
    previous_assignments = window.filter(pl.col("event_date") < DAY).select("memory_id", "persona_id")
    previous = pl.DataFrame({"persona_id": [1, 2, 3], "label": ["tennis", "cooking", "golf"], "share": [0.45, 0.45, 0.1]})
    today = pl.DataFrame({"persona_id": [1, 2, 4], "label": ["tennis", "cooking · oven", "chess"], "share": [0.4, 0.4, 0.2]})
    people = window.select("person_id", "persona_id", weight=pl.lit(1.0)).unique()
    return day_drift(DAY, previous, today, people, people, window, previous_assignments, lineage)


def test_day_drift_reports_born_retired_and_relabelled_personas():
    drift = _golf_retires_chess_appears()

    assert set(drift.metrics) == set(DRIFT_METRICS)
    assert drift.metrics["born_share"] == pytest.approx(0.2)
    assert drift.metrics["retired_share"] == pytest.approx(0.1)
    assert drift.metrics["label_changes"] == pytest.approx(0.5)
    assert drift.metrics["assignment_churn"] == 0.0
    assert drift.metrics["new_persona_uptake"] == 0.0
    assert drift.metrics["max_centroid_shift"] < 0.05  # one more day of the same words
    assert drift.metrics["share_psi"] == pytest.approx(0.0)
    assert not drift.warming_up
    statuses = dict(drift.personas.select("persona_id", "status").iter_rows())
    assert statuses == {1: "kept", 2: "kept", 3: "retired", 4: "born"}


def test_a_young_window_is_warming_up_and_never_breaches():
    window = _window(DAY, days=2)
    personas = pl.DataFrame({"persona_id": [1, 2], "label": ["tennis", "cooking"], "share": [0.5, 0.5]})
    people = window.select("person_id", "persona_id", weight=pl.lit(1.0)).unique()
    drift = day_drift(DAY, personas, personas, people, people, window, window.select("memory_id", "persona_id"))
    assert drift.warming_up
    everything_breaches = DriftThresholds(**{metric: -1.0 for metric in DRIFT_METRICS})
    assert not drift_rows(DAY, drift, everything_breaches)["breached"].any()


def test_drift_rows_breach_only_above_the_threshold_and_what_chance_reaches():
    metrics = {metric: 0.1 for metric in DRIFT_METRICS} | {"new_persona_uptake": 0.2, "share_psi": 0.3}
    rows = drift_rows(DAY, DayDrift(metrics, pl.DataFrame(), warming_up=False), DriftThresholds())
    assert rows.columns == ["event_date", "metric", "value", "threshold", "chance_floor", "breached"]
    assert rows.filter("breached")["metric"].to_list() == ["share_psi", "new_persona_uptake"]
    # Chance alone reaches a PSI of 0.35 on the day's counts: 0.3 is no breach; an uptake floor under the
    # threshold changes nothing.
    sparse_day = DayDrift(metrics, pl.DataFrame(), warming_up=False,
                          chance_floors={"share_psi": 0.35, "new_persona_uptake": 0.05})
    rows = drift_rows(DAY, sparse_day, DriftThresholds())
    assert rows.filter("breached")["metric"].to_list() == ["new_persona_uptake"]
    assert dict(rows.select("metric", "chance_floor").iter_rows())["share_psi"] == 0.35


def test_psi_chance_floor_is_what_two_samples_of_one_distribution_reach():
    rng = np.random.default_rng(7)
    shares = rng.dirichlet(np.ones(13))
    counts = {size: np.round(shares * size) for size in (150, 700)}
    for day_counts in counts.values():
        floor = psi_chance_floor(day_counts, day_counts)
        psis = np.array([population_stability_index(rng.multinomial(int(day_counts.sum()), shares),
                                                    rng.multinomial(int(day_counts.sum()), shares))
                         for _ in range(2000)])
        # Independent samples of one distribution pass the floor on about 1 day in 100.
        assert 0.002 < np.mean(psis > floor) < 0.03
    # 150 memories a day: chance alone passes the 0.15 threshold; 700: it does not.
    assert psi_chance_floor(counts[150], counts[150]) > DriftThresholds().share_psi
    assert psi_chance_floor(counts[700], counts[700]) < DriftThresholds().share_psi
    assert psi_chance_floor(counts[150], counts[150]) == psi_chance_floor(counts[150], counts[150])  # seeded
    assert psi_chance_floor([0, 0], [3, 4]) == 0.0


def test_uptake_chance_floor_is_high_for_people_seen_a_few_times_and_low_for_regulars():
    start = DAY - dt.timedelta(days=3)
    # A few memories a person, each persona seen once: one more memory is likely a persona new to them.
    sparse = pl.DataFrame([row for person in range(40)
                           for row in _memories(f"p{person}", [person % 7, (person + 1) % 7, (person + 2) % 7, 9], start)])
    # Twenty memories a person in two personas, each seen many times: a new one is unlikely by chance.
    regulars = pl.DataFrame([
        {"person_id": f"p{person}", "event_date": start + dt.timedelta(days=offset % 3), "persona_id": offset % 2}
        for person in range(40) for offset in range(20)
    ] + [{"person_id": f"p{person}", "event_date": DAY, "persona_id": 0} for person in range(40)])
    assert uptake_chance_floor(sparse, DAY) > 0.9  # every earlier memory a singleton: f1 / N = 1
    # Over 500 people the floor is the normal quantile of the simulated sum: both agree at the boundary.
    crowd = pl.DataFrame([row for person in range(600) for row in _memories(f"p{person}", [0, 0, 1, 2], start)])
    simulated = uptake_chance_floor(crowd.filter(pl.col("person_id").is_in([f"p{i}" for i in range(500)])), DAY)
    assert uptake_chance_floor(crowd, DAY) == pytest.approx(simulated, abs=0.01)
    assert uptake_chance_floor(regulars, DAY) == 0.0
    assert uptake_chance_floor(regulars.filter(pl.col("event_date") < DAY), DAY) == 0.0  # nobody active on the day


def test_moved_personas_say_how_each_moved_and_skip_the_unmoved():
    details = pl.DataFrame({
        "persona_id": [1, 2, 3, 4, 5],
        "label_yesterday": ["tennis", "cooking", "golf", None, "chess"],
        "share_yesterday": [0.3, 0.3, 0.1, None, 0.3],
        "label_today": ["tennis", "cooking · oven", None, "hiking", "chess"],
        "share_today": [0.3, 0.2, None, 0.2, 0.3],
        "centroid_shift": [0.01, 0.02, None, None, 0.01],
        "people_taking_up": [0, 0, 0, 0, 4],
        "status": ["kept", "kept", "retired", "born", "kept"],
        "label_changed": [False, True, False, False, False],
        "share_change": [0.0, -1 / 3, None, None, 0.0],
    })
    moved = moved_personas(details, max_centroid_shift=0.15)
    assert moved[0].startswith("5 chess") and "taken up by 4 people" in moved[0]
    assert any(
        line.startswith("2 cooking · oven") and "-33%" in line and "relabelled from 'cooking'" in line for line in moved
    )
    assert any(line.startswith("3 golf: retired") for line in moved)
    assert any(line.startswith("4 hiking: born") for line in moved)
    assert not any(line.startswith("1 ") for line in moved)


def test_with_lineage_a_split_is_no_birth_and_a_missing_persona_is_dormant_not_retired():
    lineage = pl.DataFrame({"persona_id": [1, 2, 4, 9], "event": ["continued", "continued", "split_from", "retired"]})

    drift = _golf_retires_chess_appears(lineage)

    assert drift.metrics["born_share"] == 0.0 and drift.metrics["retired_share"] == 0.0
    statuses = dict(drift.personas.select("persona_id", "status").iter_rows())
    assert statuses == {1: "kept", 2: "kept", 3: "dormant", 4: "split", 9: "retired"}
    moved = " | ".join(moved_personas(drift.personas, max_centroid_shift=0.15))
    assert "4 chess: split off with 20.0%" in moved and "3 golf: dormant, had 10.0%" in moved and "9 : retired" in moved
