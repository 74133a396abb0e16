"""Persona ids across days: a persona missing for a day keeps its id; splits, merges, births and
retirements are on record in the lineage."""

import datetime as dt
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from science_builders import COOKING_WORDS, TENNIS_WORDS, make_events

from dagster_project.science.daily import PersonaSettings, fit_day, memories_for_day
from dagster_project.science.identity import (
    Candidates,
    carry_identity,
    id_stability,
    learned_match_cut,
    reconcile_with_previous,
)

GARDEN_WORDS = ["garden", "seeds", "compost", "tulips", "hedge", "watering"]
DAY = dt.date(2026, 10, 1)


def three_persona_memories(skip_garden_on_day: int) -> pl.DataFrame:
    """Memories of three days: 15 people in each of three personas with disjoint words, one session
    a day; the garden people skip one day."""
    rng = np.random.default_rng(3)
    rows = []
    for person in range(45):
        name, words = [("tennis", TENNIS_WORDS), ("cooking", COOKING_WORDS), ("garden", GARDEN_WORDS)][person % 3]
        for day in range(3):
            if name == "garden" and day == skip_garden_on_day:
                continue
            minute = day * 24 * 60 + int(rng.integers(0, 600))
            for step, (action, category) in enumerate([("page_view", name), ("search", None), ("search", None)]):
                text = " ".join(rng.choice(words, 3, replace=False))
                rows.append((f"{name}-{person}-{day}-{step}", f"p{person:02d}", minute + step, "web", action,
                             f"I-{name}" if category else None, category, text))
    events = make_events(rows)
    return pl.concat([memories_for_day(day) for day in events.partition_by("event_date", maintain_order=True)])


def chain_fits(memories: pl.DataFrame, settings: PersonaSettings, settings_on: dict | None = None) -> dict:
    """fit_day over the days in order, with each day's history and lineage as persona_model passes them
    (`settings_on`: other settings on some days)."""
    fits, next_id = {}, 1
    for day in sorted(set(memories["event_date"])):
        history = pl.concat([
            fit.assignments.join(fit.personas.select("persona_id", "parent_persona_id"), on="persona_id", how="left")
            for fit in fits.values()
        ]).select("event_date", "memory_id", "persona_id", "parent_persona_id") if fits else None
        lineage = pl.concat([fit.lineage for fit in fits.values()]) if fits else None
        fits[day] = fit_day(memories.filter(pl.col("event_date") <= day), day, history, next_id,
                            (settings_on or {}).get(day, settings), lineage)
        next_id = fits[day].next_persona_id
    return fits


def test_a_persona_missing_for_a_day_comes_back_under_its_id():
    # A one-day window: on the middle day the garden memories weigh nothing and no cluster holds them.
    settings = PersonaSettings(window_days=1, recent_days=1, k_min=2, n_held_out=5, n_evidence=4)
    fits = chain_fits(three_persona_memories(skip_garden_on_day=1), settings)
    first, middle, last = (fits[DAY + dt.timedelta(days=offset)] for offset in range(3))
    garden = first.personas.filter(pl.col("top_terms").list.contains("garden"))["persona_id"]
    assert first.personas.height == 3 and middle.personas.height == 2 and last.personas.height == 3
    assert garden.len() == 1 and garden.item() not in middle.personas["persona_id"].to_list()
    assert set(last.personas["persona_id"]) == set(first.personas["persona_id"])
    assert last.lineage.filter(pl.col("level") == "persona")["event"].to_list() == ["continued"] * 3
    # Missing for a day is not retired: its old memories went to a neighbour, on record as a merge it came back from.
    middle_events = middle.lineage.filter(pl.col("level") == "persona")
    assert middle_events.filter(pl.col("persona_id") == garden.item())["event"].to_list() == ["merged_into"]
    assert "retired" not in middle_events["event"].to_list()


def test_a_persona_a_lower_k_folds_into_a_neighbour_for_a_day_keeps_its_cluster_and_id():
    # k is chosen afresh each day; on the middle day only k=2 is allowed, which folds one persona into another.
    settings = PersonaSettings(window_days=3, recent_days=1, k_min=3, k_max=3, n_held_out=5, n_evidence=4)
    fits = chain_fits(three_persona_memories(skip_garden_on_day=-1), settings,
                      {DAY + dt.timedelta(days=1): replace(settings, k_min=2, k_max=2)})
    ids = [sorted(fit.personas["persona_id"]) for fit in fits.values()]
    assert ids == [[1, 2, 3]] * 3
    assert fits[DAY + dt.timedelta(days=1)].lineage.filter(pl.col("level") == "persona")["event"].to_list() == \
        ["continued"] * 3


def unit(vectors: list[list[float]]) -> np.ndarray:
    array = np.asarray(vectors, dtype=float)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_lineage_records_a_split_a_merge_a_birth_and_a_retirement():
    as_of = dt.date(2026, 10, 10)
    candidates = Candidates(
        centroids=unit([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0.9, 0.1, 0], [0, 0, 0, 1]]),
        ids=np.array([5, 7, 8, 9]),
        last_seen=np.array([as_of - dt.timedelta(days=1)] * 3 + [as_of - dt.timedelta(days=7)], dtype="datetime64[D]"),
    )
    # Today: 0 continues 5; 1 is split off 5's members; 2 continues 7 and takes all of 8's members; 3 is new.
    today = unit([[1, 0.05, 0, 0], [0.8, 0, 0, 0.6], [0, 1, 0.05, 0], [0, 0, 1, 0]])
    memberships = pl.DataFrame({
        "cluster": [0] * 6 + [1] * 4 + [2] * 8 + [3] * 5,
        "previous_persona_id": [5] * 6 + [5] * 4 + [7] * 5 + [8] * 3 + [None] * 5,
    }, schema={"cluster": pl.Int64, "previous_persona_id": pl.Int64})
    identity = carry_identity(today, candidates, memberships, as_of, next_persona_id=20, match_cut=0.15)
    assert identity.persona_ids.tolist() == [5, 20, 7, 21] and identity.next_persona_id == 22
    rows = {row["persona_id"]: row for row in identity.lineage.iter_rows(named=True)}
    assert {persona_id: row["event"] for persona_id, row in rows.items()} == {
        5: "continued", 7: "continued", 8: "merged_into", 9: "retired", 20: "split_from", 21: "born"}
    assert rows[20]["related_ids"] == [5] and rows[20]["similarity"] == pytest.approx(1.0)
    assert rows[8]["related_ids"] == [7] and rows[8]["similarity"] == pytest.approx(1.0)
    assert rows[5]["similarity"] == pytest.approx(float(today[0] @ candidates.centroids[0]))
    # A persona already merged is not retired again when it leaves the memory.
    closed = carry_identity(today, candidates, memberships, as_of, 20, 0.15, closed_ids=frozenset({9}))
    assert 9 not in closed.lineage["persona_id"].to_list()


def test_a_lost_persona_is_kept_when_it_stands_apart_and_a_catch_all_is_let_go():
    directions = {"A": [1, 0, 0, 0], "B": [0, 1, 0, 0], "C": [0, 0.4, 0.917, 0], "D": [0, 0, 0, 1], "M": [1, 1, 1, 0]}
    sizes = {"A": 20, "B": 20, "C": 20, "D": 10, "M": 12}  # M: memories between A, B and C
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(unit([np.asarray(directions[name]) + rng.normal(0, 0.05, 4)
                            for name, size in sizes.items() for _ in range(size)]))
    people, weights = np.arange(X.shape[0]), np.ones(X.shape[0])

    def reconciled(today: list[str], previous: str, min_people: int = 5) -> list[str]:
        recent = Candidates(unit([directions[name] for name in previous]), np.arange(len(previous)),
                            np.full(len(previous), np.datetime64(DAY, "D")))
        centroids = unit([[2, 0, 0, 1] if name == "A+D" else directions[name] for name in today])
        kept = reconcile_with_previous(X, weights, centroids, recent, 0.3, people, min_people)
        return sorted(name for name, direction in directions.items() if (kept @ unit([direction])[0]).max() > 0.95)

    # A k one lower folded D into A (B and C, 0.6 apart, are the closest pair); a k one higher added M.
    assert reconciled(["A+D", "B", "C", "M"], "ABCD") == ["A", "B", "C", "D"]
    assert reconciled(["A+D", "B", "C"], "ABCDM") == ["A", "B", "C", "D"]  # yesterday's catch-all does not return
    assert reconciled(["A+D", "B", "C"], "ABCD", min_people=11) == ["B", "C"]  # D has too few people


def test_matching_keeps_ids_under_small_drift_and_numbers_the_first_day():
    as_of = dt.date(2026, 10, 2)
    yesterday = Candidates(unit([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]), np.array([10, 11, 12]),
                           np.array([as_of - dt.timedelta(days=1)] * 3, dtype="datetime64[D]"))
    # Clusters 2 and 0 drifted a little (listed in another order); a new one appeared along the fourth axis.
    today = unit([[0.1, 0, 1, 0], [0, 0.1, 0, 1], [1, 0.05, 0.1, 0]])
    no_memberships = pl.DataFrame(schema={"cluster": pl.Int64, "previous_persona_id": pl.Int64})
    identity = carry_identity(today, yesterday, no_memberships, as_of, next_persona_id=13, match_cut=0.3)
    assert identity.persona_ids.tolist() == [12, 13, 10] and identity.next_persona_id == 14
    # 11 was seen yesterday and is only dormant: no row until it comes back or leaves the memory.
    assert dict(identity.lineage.select("persona_id", "event").iter_rows()) == {
        10: "continued", 12: "continued", 13: "born"}
    first_day = carry_identity(unit(np.eye(3)), Candidates.none(3), no_memberships, as_of, 0, 0.3)
    assert first_day.persona_ids.tolist() == [0, 1, 2] and first_day.next_persona_id == 3
    assert first_day.lineage["event"].to_list() == ["born"] * 3


def test_a_cluster_beyond_the_cut_holding_an_unmatched_personas_members_keeps_its_id():
    as_of = dt.date(2026, 10, 3)
    yesterday = Candidates(unit([[1, 0, 0], [0, 1, 0]]), np.array([3, 4]),
                           np.array([as_of - dt.timedelta(days=1)] * 2, dtype="datetime64[D]"))
    today = unit([[1, 0.02, 0], [0, 0.6, 0.8]])  # 4 moved far (a thin day), but kept most of its members
    memberships = pl.DataFrame({"cluster": [0] * 5 + [1] * 5, "previous_persona_id": [3] * 5 + [4] * 4 + [None]},
                               schema={"cluster": pl.Int64, "previous_persona_id": pl.Int64})
    identity = carry_identity(today, yesterday, memberships, as_of, next_persona_id=5, match_cut=0.2)
    assert identity.persona_ids.tolist() == [3, 4] and identity.next_persona_id == 5
    assert identity.lineage.filter(pl.col("persona_id") == 4)["similarity"].item() == pytest.approx(0.6)


def test_a_new_cluster_of_mostly_new_memories_is_born_and_a_dormant_persona_returns_only_with_its_memories():
    as_of = dt.date(2026, 10, 10)
    recent = Candidates(unit([[1, 0, 0], [0, 1, 0.3]]), np.array([3, 6]),
                        np.array([as_of - dt.timedelta(days=1), as_of - dt.timedelta(days=4)], dtype="datetime64[D]"))
    # Cluster 1 lies near dormant 6 but took none of its memories (they went to 0), and most of it is new today;
    # its few older members sat in 3 yesterday: new content, not a split of 3.
    today = unit([[1, 0.02, 0], [0, 1, 0.2]])
    memberships = pl.DataFrame({"cluster": [0] * 8 + [1] * 6, "previous_persona_id": [3] * 8 + [3] * 2 + [None] * 4},
                               schema={"cluster": pl.Int64, "previous_persona_id": pl.Int64})
    identity = carry_identity(today, recent, memberships, as_of, next_persona_id=7, match_cut=0.2,
                              return_clusters={6: frozenset({0})})
    assert identity.persona_ids.tolist() == [3, 7]
    assert dict(identity.lineage.select("persona_id", "event").iter_rows()) == {3: "continued", 7: "born"}
    # Where its memories went, or with no membership on record, 6 comes back under its id.
    back = carry_identity(today, recent, memberships, as_of, 7, 0.2, return_clusters={6: frozenset({0, 1})})
    assert back.persona_ids.tolist() == [3, 6]
    assert carry_identity(today, recent, memberships, as_of, 7, 0.2).persona_ids.tolist() == [3, 6]


def test_the_match_cut_is_the_neighbour_distance_unless_personas_move_further():
    centroids = unit([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]])  # nearest neighbours at 0.2, 0.2 and 0.4
    assert learned_match_cut(np.zeros(3), centroids, ceiling=0.5) == pytest.approx(0.2)  # too few moves
    moves = np.array([0.02, 0.03, 0.03, 0.04, 0.02, 0.03, 0.05, 0.03, 0.04, 0.03])
    assert learned_match_cut(moves, centroids, ceiling=0.5) == pytest.approx(0.2)
    assert 0.3 < learned_match_cut(moves + 0.3, centroids, ceiling=0.5) < 0.4  # thin days: personas move more
    assert learned_match_cut(moves + 0.6, centroids, ceiling=0.5) == pytest.approx(0.5)


def test_id_stability_counts_days_whose_majority_id_is_yesterdays():
    days = [DAY + dt.timedelta(days=offset) for offset in range(3)]
    frame = pl.DataFrame({
        "event_date": days * 2 + [days[1]],
        "planted_persona_id": ["a"] * 3 + ["b"] * 3 + ["b"],
        "persona_id": [1, 1, 1, 2, 3, 3, 3],
    })
    assert id_stability(frame) == {"id_stability": 0.75, "id_stability_pairs": 4}
