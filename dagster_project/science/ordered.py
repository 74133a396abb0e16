"""Float sums that come out the same on every run.

Polars adds a group's floats in the order its rows arrive, and that order is not fixed: DuckDB
writes a model's rows in the order its threads finish, and a Polars group-by, join or `unique`
that does not keep order passes rows on the same way. The last bit of a sum then changes from
run to run, and with it a tie in a ranking (two objects of equal popularity: one baseline's
next-day hits moved by 0.3 points between two runs of the same day) and the checksum of every
table written from it. Two cures, by cost:

* `ordered_sum` adds each group's values smallest first: the same bits on every run, but a sort per
  group, four times the cost of a plain sum over millions of groups of a few rows. It is written
  as a running sum of the sorted values, because a lazy plan drops a sort that only feeds `sum`;
* `fixed_point_sum` rounds every term to a multiple of 2**-40 first: float64 then adds them
  without rounding, in any order, while the sum stays below 2**13. Only for sums bounded well
  below that: the rankers' scores, sums of a few products of weights and shares (at most ~6),
  at the cost of a plain sum.
"""

import polars as pl

FIXED_POINT = 2.0**40


def ordered_sum(values: pl.Expr) -> pl.Expr:
    """The sum of `values`, added smallest first: the same bits whatever order the rows came in."""
    return values.sort().cum_sum().last().fill_null(0.0)


def ordered_mean(values: pl.Expr) -> pl.Expr:
    """The mean of the non-null `values`, added smallest first."""
    return ordered_sum(values) / values.count()


def fixed_point_sum(values: pl.Expr) -> pl.Expr:
    """The sum of `values` rounded to multiples of 2**-40, exact in any order while below 2**13 in magnitude."""
    return (values * FIXED_POINT).round().sum() / FIXED_POINT
