import datetime as dt

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from dagster_project.science.clustering import (
    add_novel_persona,
    assign,
    assign_with_person_prior,
    fit_personas,
    parse_source_weights,
    recency_weights,
    source_factors,
    weighted_centroids,
)
from dagster_project.science.daily import PersonaSettings, _k_candidates, memory_weights

AS_OF = dt.date(2026, 10, 28)


def dates(*days_ago):
    return pl.Series([AS_OF - dt.timedelta(days=d) for d in days_ago])


def test_recency_weights_give_the_last_week_60_percent():
    # 2 rows in the last 7 days, 3 older rows in the window, 1 too old, 1 in the future.
    weights = recency_weights(dates(0, 6, 7, 20, 27, 28, -1), AS_OF)
    assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights, [0.3, 0.3, 0.4 / 3, 0.4 / 3, 0.4 / 3, 0.0, 0.0])


def test_recency_weights_give_everything_to_the_only_populated_part():
    np.testing.assert_allclose(recency_weights(dates(1, 2), AS_OF), [0.5, 0.5])
    np.testing.assert_allclose(recency_weights(dates(10, 40), AS_OF, recent_share=0.9), [1.0, 0.0])
    assert recency_weights(dates(40), AS_OF).sum() == 0.0


def test_source_factors_weigh_a_memory_by_the_mean_of_its_sources():
    sources = pl.Series([["web"], ["social"], ["crm", "web"], ["iot"], []], dtype=pl.List(pl.String))
    # Listed mean (0.40 + 0.35 + 0.25) / 3 = 1/3; iot is unlisted and an empty list is neutral.
    factors = source_factors(sources, "web=0.40, social=0.35,crm=0.25")
    np.testing.assert_allclose(factors, [1.2, 1.05, 0.975, 1.0, 1.0])
    np.testing.assert_allclose(source_factors(sources, ""), np.ones(5))
    np.testing.assert_allclose(source_factors(sources, "web=1,social=1,crm=1"), np.ones(5))


@pytest.mark.parametrize("spec", ["web", "web=heavy", "=0.4", "web=-1", "web=0,crm=0"])
def test_source_weights_reject_what_is_not_source_equals_weight(spec):
    with pytest.raises(ValueError, match="source_weights"):
        parse_source_weights(spec)


def test_memory_weights_keep_60_40_recency_within_equal_sources_and_shift_across_sources():
    window = pl.DataFrame({"event_date": dates(0, 0, 10, 10),
                           "sources": [["web"], ["social"], ["web"], ["social"]]})
    equal = memory_weights(window, AS_OF, PersonaSettings())
    np.testing.assert_allclose(equal, [0.3, 0.3, 0.2, 0.2])
    weighted = memory_weights(window, AS_OF, PersonaSettings(source_weights="web=3,social=1"))
    assert weighted.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weighted[[0, 2]] / weighted[[1, 3]], [3.0, 3.0])
    assert weighted[0] / weighted[2] == pytest.approx(1.5)  # recency ratio 0.3 / 0.2 unchanged


def planted_vectors(n_per_cluster=30, n_clusters=2, vocabulary=8, seed=0):
    """Rows drawn from disjoint vocabularies: cluster c uses words c*vocabulary ..."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(n_clusters), n_per_cluster)
    rows = np.zeros((truth.size, n_clusters * vocabulary))
    for row, cluster in enumerate(truth):
        words = rng.choice(vocabulary, 3, replace=False) + cluster * vocabulary
        rows[row, words] = rng.uniform(0.5, 1.0, 3)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return sp.csr_matrix(rows), truth


def test_fit_personas_recovers_planted_clusters_and_chooses_k():
    X, truth = planted_vectors(n_clusters=3)
    fit = fit_personas(X, np.full(X.shape[0], 1 / X.shape[0]), k_range=range(2, 7))
    assert fit.k == 3
    assert adjusted_rand_score(truth, fit.labels) == 1.0
    np.testing.assert_allclose(np.linalg.norm(fit.centroids, axis=1), 1.0)
    assert set(fit.silhouette_by_k) == set(range(2, 7))
    assert fit.silhouette == pytest.approx(max(fit.silhouette_by_k.values()))
    assert fit.silhouette > 0.3
    labels, distances = assign(X, fit.centroids)
    assert np.array_equal(labels, fit.labels) and np.all((distances >= 0) & (distances < 1))


def test_an_svd_fitted_on_a_sample_of_rows_finds_the_same_clusters():
    X, truth = planted_vectors(n_per_cluster=200, n_clusters=4, vocabulary=10)
    weights = np.full(X.shape[0], 1 / X.shape[0])
    on_sample = fit_personas(X, weights, k_range=range(2, 7), svd_fit_rows=100)
    on_all = fit_personas(X, weights, k_range=range(2, 7), svd_fit_rows=X.shape[0])
    assert on_sample.k == on_all.k == 4
    assert adjusted_rand_score(truth, on_sample.labels) == adjusted_rand_score(truth, on_all.labels) == 1.0


def test_rows_outside_the_window_are_labelled_but_do_not_shape_clusters():
    X, truth = planted_vectors(n_clusters=2)
    weights = np.ones(truth.size)
    weights[np.flatnonzero(truth == 1)[20:]] = 0.0
    fit = fit_personas(X, weights / weights.sum(), k_range=range(2, 4))
    assert fit.labels.shape == truth.shape
    assert adjusted_rand_score(truth, fit.labels) == 1.0


def test_previous_labels_carry_yesterdays_clusters_where_two_fits_are_equally_good():
    """Eight tight groups evenly round a circle pair up into four clusters in two equally good ways: a fit with
    yesterday's labels keeps yesterday's pairing, whichever of the two a fresh search would pick, also when
    yesterday had a cluster more or fewer."""
    rng = np.random.default_rng(3)
    group = np.repeat(np.arange(8), 20)
    angle = np.deg2rad(group * 45 + rng.uniform(-3, 3, group.size))
    X = sp.csr_matrix(np.column_stack([np.cos(angle), np.sin(angle)]))
    weights = np.full(group.size, 1 / group.size)
    fresh = fit_personas(X, weights, k_range=range(4, 5))
    pairs_zero_with_one = fresh.labels[group == 0][0] == fresh.labels[group == 1][0]
    other_pairing = (group + (1 if pairs_zero_with_one else 0)) % 8 // 2  # {1,2},{3,4}.. or {0,1},{2,3}..
    assert adjusted_rand_score(fresh.labels, other_pairing) < 0.5

    carried = fit_personas(X, weights, k_range=range(4, 5), previous_labels=other_pairing)
    assert adjusted_rand_score(other_pairing, carried.labels) == 1.0
    # Memories new today (-1) get a cluster too. Fewer clusters today than yesterday start from yesterday's
    # heaviest: a fifth cluster of half a group is let go, its members go back to their pair.
    partly_new = np.where(np.arange(group.size) % 5 == 0, -1, other_pairing)
    partly_carried = fit_personas(X, weights, k_range=range(4, 5), previous_labels=partly_new)
    assert adjusted_rand_score(other_pairing, partly_carried.labels) == 1.0
    five_before = np.where((group == 3) & (np.arange(group.size) % 2 == 0), 0, other_pairing + 1)
    shrunk = fit_personas(X, weights, k_range=range(4, 5), previous_labels=five_before)
    assert adjusted_rand_score(other_pairing, shrunk.labels) == 1.0
    # More clusters today start by splitting yesterday's widest: two pairs merged yesterday part again.
    three_before = np.where(other_pairing == 3, 2, other_pairing)
    grown = fit_personas(X, weights, k_range=range(4, 5), previous_labels=three_before)
    assert adjusted_rand_score(other_pairing, grown.labels) == 1.0


def test_the_rows_of_a_cluster_of_too_few_people_move_to_the_supported_clusters():
    """Two interests shared by 15 people each, and a third written by two prolific people only: the silhouette
    finds all three, but the third describes two people, not a persona; its memories join the other clusters."""
    X, truth = planted_vectors(n_per_cluster=30, n_clusters=3)
    people = np.where(truth < 2, np.arange(truth.size) % 15 + 15 * truth, 30 + np.arange(truth.size) % 2)
    weights = np.full(truth.size, 1 / truth.size)
    every_cluster = fit_personas(X, weights, k_range=range(2, 5), person_codes=people, min_people=2)
    assert every_cluster.k == 3 and adjusted_rand_score(truth, every_cluster.labels) == 1.0
    supported = fit_personas(X, weights, k_range=range(2, 5), person_codes=people, min_people=5)
    assert supported.k == 2
    assert adjusted_rand_score(truth[truth < 2], supported.labels[truth < 2]) == 1.0
    # Where no cluster has the support, the two best-supported stay: a sparse window still gets personas.
    assert fit_personas(X, weights, k_range=range(2, 5), person_codes=people, min_people=99).k == 2


def test_the_k_search_asks_no_more_personas_than_the_window_has_people_for():
    settings = PersonaSettings(k_min=2, k_max=24, k_step=3, min_persona_people=5)
    assert _k_candidates(0, 2000, settings) == range(2, 25)
    assert _k_candidates(0, 52, settings) == range(2, 11)
    assert _k_candidates(24, 30, settings) == range(6, 7)  # yesterday's 24 on a window now of 30 people
    assert _k_candidates(4, 30, settings) == range(2, 7)
    assert _k_candidates(3, 4, settings) == range(2, 3)  # k_min even for a handful of people


def test_weighted_centroids_follow_the_weights():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    centroids = weighted_centroids(X, np.array([0, 0, 1]), np.array([3.0, 1.0, 1.0]), 2)
    np.testing.assert_allclose(centroids, [[3 / np.sqrt(10), 1 / np.sqrt(10)], [0.0, 1.0]])


def unit(rows):
    rows = np.asarray(rows, dtype=float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_assign_returns_cosine_distance_to_the_nearest_centroid():
    X = sp.csr_matrix(unit([[1, 1], [1, 0]]))
    labels, distances = assign(X, unit([[1, 0], [0, 1]]))
    assert labels.tolist() == [0, 0]
    np.testing.assert_allclose(distances, [1 - 1 / np.sqrt(2), 0.0], atol=1e-12)


def test_the_person_prior_settles_ambiguous_memories_and_never_counts_a_memory_for_itself():
    # Persona columns: tennis, cooking. Ann: two clear tennis memories, then a bestseller that
    # leans slightly to cooking. Bob: a single ambiguous memory (no other memories to ask).
    similarity = np.array([
        [0.9, 0.1],
        [0.8, 0.2],
        [0.40, 0.45],
        [0.40, 0.45],
    ])
    people = np.array([0, 0, 0, 1])
    assert assign_with_person_prior(similarity, people, 0.0).tolist() == [0, 0, 1, 1]
    assert assign_with_person_prior(similarity, people, 0.2).tolist() == [0, 0, 0, 1]
    # A clear memory of another interest keeps it: a prior of 0.2 cannot outweigh 0.9 vs 0.1.
    multi = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    assert assign_with_person_prior(multi, np.zeros(3, dtype=int), 0.2).tolist() == [0, 0, 1]


def _noisy_rows(rng, direction, n, dimensions=12, noise=0.15):
    rows = np.zeros((n, dimensions))
    rows[:, direction] = 1.0
    return rows + noise * rng.random((n, dimensions))


def test_add_novel_persona_gives_a_group_of_new_memories_from_many_people_its_own_centroid():
    rng = np.random.default_rng(0)
    old = np.vstack([_noisy_rows(rng, 0, 200), _noisy_rows(rng, 1, 200)])
    X = sp.csr_matrix(normalize_rows(np.vstack([old, _noisy_rows(rng, 2, 30)])))
    weights = np.full(X.shape[0], 1 / X.shape[0])
    centroids = weighted_centroids(X[:400], np.repeat([0, 1], 200), weights[:400], 2)
    new_rows = np.arange(400, 430)
    people = np.arange(430)  # one memory per person
    refitted = add_novel_persona(X, weights, centroids, new_rows, people, cut=0.4, min_people=10)
    assert refitted.shape == (3, 12) and refitted[2].argmax() == 2
    assert np.array_equal(assign(X, refitted)[0], np.repeat([0, 1, 2], [200, 200, 30]))
    # The same memories from 5 people, or new memories each far on its own: no persona.
    assert add_novel_persona(X, weights, centroids, new_rows, people % 5, cut=0.4, min_people=10) is centroids
    scattered = sp.csr_matrix(normalize_rows(np.vstack([old, np.eye(12)[2:]])))
    assert add_novel_persona(scattered, np.full(410, 1 / 410), centroids, np.arange(400, 410), np.arange(410),
                             cut=0.4, min_people=5) is centroids


def normalize_rows(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)
