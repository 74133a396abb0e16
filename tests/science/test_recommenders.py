"""Next-day rankers on hand-checkable frames: each baseline, the persona ranker's parts, the CI."""

from datetime import date

import numpy as np
import polars as pl
import pytest

from dagster_project.science.recommenders import (
    blend_scores,
    category_profile_recommendations,
    item_knn_recommendations,
    next_day_hits,
    object_categories,
    paired_bootstrap_ci,
    persona_category_recommendations,
    persona_recommendations,
    popularity_recommendations,
    ranker_weights,
    summarise_hits,
    tune_blend,
    tune_blend_and_ablation,
)

DAY = date(2026, 10, 8)


def events(rows: list[tuple]) -> pl.DataFrame:
    """person_id, days before DAY, object_id, category."""
    return pl.DataFrame(rows, schema=["person_id", "age", "object_id", "category"], orient="row").select(
        "person_id",
        (pl.lit(DAY) - pl.duration(days=pl.col("age"))).cast(pl.Date).alias("event_date"),
        "object_id",
        "category",
    )


def next_day_utility(history: pl.DataFrame, today: pl.DataFrame, scores_by_method: dict, k_values=(10, 50)) -> pl.DataFrame:
    """Hit rate and recall per method and K, as the persona_utility asset summarises them."""
    return summarise_hits(next_day_hits(history, today, scores_by_method, k_values))


def as_dict(scores: pl.DataFrame, person: str) -> dict[str, float]:
    rows = scores.filter(pl.col("person_id") == person)
    return dict(zip(rows["object_id"], rows["score"], strict=True))


def test_object_categories_take_the_majority_and_mark_uncategorised_objects():
    history = events([("a", 1, "x", "shoes"), ("b", 1, "x", "shoes"), ("c", 1, "x", "tv"), ("c", 1, "y", None),
                      ("c", 1, None, "tv")])
    categories = dict(object_categories(history).iter_rows())
    assert categories == {"x": "shoes", "y": ""}


def test_category_profile_is_recency_weighted_shares_times_popularity_in_category():
    history = events([
        ("u", 0, "s1", "shoes"), ("u", 7, "t1", "tv"),  # u: shoes today (weight 1), tv a half-life ago (0.5)
        ("v", 1, "s1", "shoes"), ("v", 1, "s2", "shoes"), ("w", 1, "s2", "shoes"), ("w", 2, "s2", None),
        ("v", 1, "t2", "tv"),
    ])
    scores = as_dict(category_profile_recommendations(history, pl.Series(["u"]), DAY, half_life_days=7), "u")
    # shares: shoes 1/1.5, tv 0.5/1.5; shoes events: s1 2, s2 3 (the null-category s2 event counts by its object)
    assert scores["s2"] == pytest.approx(2 / 3 * 3 / 5)
    assert scores["t2"] == pytest.approx(1 / 3 * 1 / 2)
    assert set(scores) == {"s2", "t2"}  # s1 and t1 are u's own


def test_category_rankers_keep_each_person_s_best_unseen_objects_only():
    # u shops in 5 categories of 6 objects each and has seen c0_0: without the cap u would get 29 candidates
    rows = [(person, 1, f"c{category}_{item}", f"c{category}")
            for person in ("v", "w") for category in range(5) for item in range(6) for _ in range(item + 1)]
    history = events(rows + [("u", 1, f"c{category}_0", f"c{category}") for category in range(5)])
    memberships = pl.DataFrame({"person_id": ["u", "v", "w"], "persona_id": [1, 1, 1], "weight": [1.0] * 3})
    persons = pl.Series(["u"])
    for scores in (
        category_profile_recommendations(history, persons, DAY, top_objects=3),
        persona_category_recommendations(history, memberships, persons, DAY, top_objects=3),
    ):
        best = as_dict(scores, "u")
        # popularity grows with the item number: c*_5 first, the five categories tie, ties at the cut kept
        assert set(best) == {f"c{category}_5" for category in range(5)}


def test_item_knn_sums_cosine_similarities_and_skips_what_the_person_touched():
    history = events([("u", 1, "a", None), ("v", 1, "a", None), ("v", 1, "b", None), ("w", 1, "b", None),
                      ("w", 1, "c", None), ("x", 1, "c", None)])
    scores = as_dict(item_knn_recommendations(history, pl.Series(["u", "w"])), "u")
    # columns a = {u, v}, b = {v, w}: cosine(a, b) = 1 / (sqrt 2 sqrt 2); c shares nobody with a
    assert scores == pytest.approx({"b": 0.5})
    w_scores = as_dict(item_knn_recommendations(history, pl.Series(["w"])), "w")
    assert set(w_scores) == {"a"}  # b and c are w's own; a is similar to b
    assert w_scores["a"] == pytest.approx(0.5)


def test_item_knn_in_batches_equals_one_batch():
    rng = np.random.default_rng(3)
    rows = [(f"p{rng.integers(40)}", 1, f"o{rng.integers(30)}", None) for _ in range(300)]
    history = events(rows)
    persons = history["person_id"].unique()
    whole = item_knn_recommendations(history, persons, top_objects=5).sort("person_id", "object_id")
    batched = item_knn_recommendations(history, persons, top_objects=5, batch_cells=7 * 30).sort("person_id", "object_id")
    assert whole.equals(batched)
    assert whole.group_by("person_id").len()["len"].max() <= 5


def test_persona_category_picks_the_persona_s_items_inside_a_shared_category():
    # runners (r1, r2) and tennis fans (t1, t2) share "apparel"; the new person n is a runner
    history = events([
        ("r1", 1, "run_shirt", "apparel"), ("r2", 1, "run_shirt", "apparel"), ("r2", 1, "tennis_skirt", "apparel"),
        ("t1", 1, "tennis_skirt", "apparel"), ("t2", 1, "tennis_skirt", "apparel"),
        ("n", 1, "socks", "apparel"),
    ])
    memberships = pl.DataFrame({"person_id": ["r1", "r2", "t1", "t2", "n"],
                                "persona_id": [1, 1, 2, 2, 1], "weight": [1.0] * 5})
    scores = as_dict(persona_category_recommendations(history, memberships, pl.Series(["n"]), DAY), "n")
    # persona 1's apparel events: run_shirt 2, tennis_skirt 1, socks 1 (n is a member too)
    assert scores["run_shirt"] == pytest.approx(2 / 4)
    assert scores["tennis_skirt"] == pytest.approx(1 / 4)
    plain = as_dict(category_profile_recommendations(history, pl.Series(["n"]), DAY), "n")
    assert plain["tennis_skirt"] > plain["run_shirt"]  # without personas the tennis item wins


def test_blend_normalises_each_component_per_person():
    components = {
        "category_profile": pl.DataFrame({"person_id": ["u", "u"], "object_id": ["a", "b"], "score": [10.0, 5.0]}),
        "item_knn": pl.DataFrame({"person_id": ["u"], "object_id": ["b"], "score": [0.2]}),
        "persona_category": pl.DataFrame({"person_id": ["u"], "object_id": ["c"], "score": [0.01]}),
        "persona_popularity": pl.DataFrame(schema={"person_id": pl.String, "object_id": pl.String, "score": pl.Float64}),
    }
    weights = ranker_weights(0.5, 0.5)
    assert weights == {"category_profile": 0.25, "item_knn": 0.25, "persona_category": 0.5, "persona_popularity": 0.0}
    assert as_dict(blend_scores(components, weights), "u") == pytest.approx({"a": 0.25, "b": 0.375, "c": 0.5})
    assert set(as_dict(blend_scores(components, ranker_weights(0.0, 0.0)), "u")) == {"a", "b"}


def test_tune_blend_finds_the_best_hit_at_10_of_every_blend_and_needs_the_persona_term():
    # Tomorrow each person takes the object only the persona term scores; ten decoys score
    # 0.5 in every component, so the persona term needs weight >= 0.5 to reach the top 10.
    people = [f"u{index}" for index in range(20)]
    history = pl.DataFrame({"person_id": people, "object_id": ["seen"] * 20})
    validation = pl.DataFrame({"person_id": people, "object_id": [f"p{index}" for index in range(20)]})

    def component(prefix: str) -> pl.DataFrame:
        decoys = [f"z{decoy}" for decoy in range(10) for _ in people]
        return pl.DataFrame({"person_id": people * 11,
                             "object_id": [f"{prefix}{index}" for index in range(20)] + decoys,
                             "score": [1.0] * 20 + [0.5] * 200})

    components = {name: component(prefix) for name, prefix in
                  [("category_profile", "c"), ("item_knn", "k"), ("persona_category", "p"), ("persona_popularity", "q")]}
    chosen = tune_blend(history, validation, components)
    assert chosen == (0.5, 0.0, 0.0)  # the smallest weights reaching every target
    # Without the persona term no blend reaches a target; the ablation's weights come from the same scoring.
    assert tune_blend_and_ablation(history, validation, components) == (chosen, (0.0, 0.0, 0.0))
    knn_targets = {**components, "item_knn": component("p")}  # item-kNN also scores tomorrow's object
    assert tune_blend_and_ablation(history, validation, knn_targets) == (
        tune_blend(history, validation, knn_targets),
        tune_blend(history, validation, knn_targets, persona_weights=(0.0,), persona_popularity_shares=(0.0,)),
    ) == ((0.0, 0.5, 0.0), (0.0, 0.5, 0.0))
    grid = {f"{weights}": blend_scores(components, ranker_weights(*weights))
            for weights in [(0.35, 0.0, 0.0), chosen, (0.85, 0.5, 1.0)]}
    hit_rates = dict(next_day_utility(history, validation, grid, k_values=(10,)).select("method", "hit_rate").rows())
    assert hit_rates == {"(0.35, 0.0, 0.0)": 0.0, f"{chosen}": 1.0, "(0.85, 0.5, 1.0)": 0.0}


def test_next_day_hits_are_per_person_and_summarise_to_the_utility():
    history = pl.DataFrame({"person_id": ["u1", "u1", "u2"], "object_id": ["x", "y", "x"]})
    today = pl.DataFrame({"person_id": ["u1", "u1", "u2"], "object_id": ["z", "w", "y"]})
    scores = pl.DataFrame({"person_id": ["u1", "u1", "u2"], "object_id": ["z", "v", "v"], "score": [1.0, 2.0, 1.0]})
    hits = next_day_hits(history, today, {"m": scores}, k_values=(1, 2)).sort("k", "person_id")
    assert hits.select("k", "person_id", "hit", "recall").rows() == [
        (1, "u1", False, 0.0), (1, "u2", False, 0.0), (2, "u1", True, 0.5), (2, "u2", False, 0.0)]
    utility = next_day_utility(history, today, {"m": scores}, k_values=(1, 2)).sort("k")
    assert utility["hit_rate"].to_list() == [0.0, 0.5] and utility["n_users"].to_list() == [2, 2]


def test_paired_bootstrap_ci_is_seeded_and_brackets_the_mean():
    differences = np.array([1.0] * 30 + [0.0] * 150 + [-1.0] * 20)
    mean, low, high = paired_bootstrap_ci(differences, seed=1)
    assert mean == pytest.approx(0.05)
    assert low < mean < high
    standard_error = differences.std() / np.sqrt(differences.size)
    assert high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.15)
    assert paired_bootstrap_ci(differences, seed=1) == (mean, low, high)
    assert paired_bootstrap_ci(np.ones(50)) == (1.0, 1.0, 1.0)
    assert all(np.isnan(paired_bootstrap_ci(np.array([]))))


def test_paired_bootstrap_ci_matches_resampling_whole_people():
    rng = np.random.default_rng(0)
    people = rng.integers(0, 120, 600)  # about five person-days each
    differences = (rng.normal(0.1, 1.0, 120)[people] + rng.normal(0.0, 0.5, 600)).round(1)
    _, low, high = paired_bootstrap_ci(differences, people, resamples=4000, seed=2)
    # naive: draw people with replacement, each with all their days, mean over the days drawn
    ids = np.unique(people)
    drawn = rng.choice(ids, size=(4000, ids.size))
    sums = np.array([differences[people == person].sum() for person in ids])
    sizes = np.array([(people == person).sum() for person in ids])
    index = np.searchsorted(ids, drawn)
    resampled = sums[index].sum(axis=1) / sizes[index].sum(axis=1)
    naive_low, naive_high = np.quantile(resampled, [0.025, 0.975])
    assert low == pytest.approx(naive_low, abs=0.02) and high == pytest.approx(naive_high, abs=0.02)
    # the same person's days move together: resampling days alone understates the spread
    _, pair_low, pair_high = paired_bootstrap_ci(differences, resamples=4000, seed=2)
    assert pair_high - pair_low < 0.8 * (high - low)


def planted_utility_case():
    """10 people like objects a0..a4, 30 people like b0..b19; tomorrow each person
    touches the one object of their group they have not touched yet."""
    history, today, memberships = [], [], []
    for person in range(40):
        group, objects = ("a", 5) if person < 10 else ("b", 20)
        person_id = f"u{person:02d}"
        missing = f"{group}{person % objects}"
        history += [(person_id, f"{group}{o}") for o in range(objects) if f"{group}{o}" != missing]
        today.append((person_id, missing))
        memberships.append((person_id, group, 1.0))
    history.append(("u00", None))  # a search: no object
    today.append(("u99", "a0"))  # no history: not evaluated
    return (
        pl.DataFrame(history, schema=["person_id", "object_id"], orient="row"),
        pl.DataFrame(today, schema=["person_id", "object_id"], orient="row"),
        pl.DataFrame(memberships, schema=["person_id", "persona_id", "weight"], orient="row"),
    )


def test_personas_beat_popularity_on_a_planted_next_day():
    history, today, memberships = planted_utility_case()
    persons = today["person_id"]
    result = next_day_utility(
        history,
        today,
        {
            "personas": persona_recommendations(history, memberships, persons),
            "popularity": popularity_recommendations(history, persons),
        },
    )
    by_method = {(row["method"], row["k"]): row for row in result.iter_rows(named=True)}
    assert result["n_users"].unique().to_list() == [40]
    assert by_method["personas", 10]["hit_rate"] == 1.0
    assert by_method["personas", 10]["recall"] == 1.0
    # popularity's top 10 is all b objects: the 10 "a" people miss until K reaches them
    assert by_method["popularity", 10]["hit_rate"] == pytest.approx(30 / 40)
    assert by_method["popularity", 50]["hit_rate"] == 1.0


def test_next_day_utility_counts_recall_per_person_and_excludes_seen_objects():
    history = pl.DataFrame({"person_id": ["u1", "u1"], "object_id": ["x", "y"]})
    today = pl.DataFrame({"person_id": ["u1", "u1", "u1"], "object_id": ["x", "z", "w"]})
    scores = pl.DataFrame(
        {"person_id": ["u1"] * 3, "object_id": ["x", "z", "v"], "score": [9.0, 5.0, 7.0]}
    )
    row = next_day_utility(history, today, {"m": scores}, k_values=(1, 2)).sort("k").to_dicts()
    # x is seen and dropped: ranking v, z; targets are z and w (x was seen)
    assert [(r["k"], r["hit_rate"], r["recall"]) for r in row] == [(1, 0.0, 0.0), (2, 1.0, 0.5)]


def test_ties_in_score_go_to_the_smaller_object_id_when_ranking_and_tuning():
    # The target "m" ties every decoy; decoys named before it push it out of the top 10, decoys after it do not.
    history = pl.DataFrame({"person_id": ["u1", "u2"], "object_id": ["seen", "seen"]})
    validation = pl.DataFrame({"person_id": ["u1", "u2"], "object_id": ["m", "m"]})
    decoys = {"u1": [f"a{index}" for index in range(10)], "u2": [f"z{index}" for index in range(10)]}
    scores = pl.DataFrame([(person, item, 1.0) for person, items in decoys.items() for item in [*items, "m"]],
                          schema=["person_id", "object_id", "score"], orient="row")
    hits = next_day_hits(history, validation, {"m": scores}, k_values=(10, 11)).sort("k", "person_id")
    assert hits.select("k", "person_id", "hit").rows() == [(10, "u1", False), (10, "u2", True),
                                                          (11, "u1", True), (11, "u2", True)]
    components = dict.fromkeys(["category_profile", "item_knn", "persona_category", "persona_popularity"], scores)
    # Every blend ranks alike, so every one hits half the people and the smallest weights win.
    assert tune_blend(history, validation, components) == (0.0, 0.0, 0.0)
