"""Group sums that give the same bits whatever order the rows come in, where a plain float sum does not."""

import numpy as np
import polars as pl
import pytest

from dagster_project.science.ordered import fixed_point_sum, ordered_mean, ordered_sum


def _grouped(frame: pl.DataFrame, expression: pl.Expr) -> dict:
    return dict(frame.group_by("group").agg(expression.alias("value")).iter_rows())


def _shuffles(frame: pl.DataFrame, count: int = 12) -> list[pl.DataFrame]:
    return [frame.sample(fraction=1.0, shuffle=True, seed=seed) for seed in range(count)]


def test_the_order_free_sums_keep_their_bits_under_any_row_order_where_a_plain_sum_does_not():
    rng = np.random.default_rng(3)
    # Weights and shares as the rankers and labels add them: 40 groups of 5 to 200 terms in [0, 1).
    sizes = rng.integers(5, 200, 40)
    frame = pl.DataFrame({"group": np.repeat(np.arange(40), sizes), "value": rng.random(int(sizes.sum()))})
    plain = {tuple(_grouped(shuffled, pl.col("value").sum()).items()) for shuffled in _shuffles(frame)}
    assert len(plain) > 1, "the fixture is meant to show a plain sum changing with the row order"
    for helper in (ordered_sum, ordered_mean, fixed_point_sum):
        results = [_grouped(shuffled, helper(pl.col("value"))) for shuffled in _shuffles(frame)]
        assert all(result == results[0] for result in results), helper.__name__
        # A lazy plan (the streaming pipelines) drops a sort that only feeds a sum: these keep theirs.
        lazy = [dict(shuffled.lazy().group_by("group").agg(helper(pl.col("value")).alias("value")).collect().iter_rows())
                for shuffled in _shuffles(frame)]
        assert all(result == results[0] for result in lazy), helper.__name__
        over = {tuple(shuffled.sort("group").select(helper(pl.col("value")).over("group"))["value"])
                for shuffled in _shuffles(frame)}
        assert len(over) == 1, helper.__name__
    assert _grouped(frame, ordered_mean(pl.col("value"))) == pytest.approx(_grouped(frame, pl.col("value").mean()))
    exact = _grouped(frame, pl.col("value").sort().sum())
    for group, value in _grouped(frame, fixed_point_sum(pl.col("value"))).items():
        assert abs(value - exact[group]) <= 200 * 2.0**-40  # one rounding of at most half a step per term

