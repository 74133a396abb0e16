"""Intent families: categories that people pursue together in one sitting are one intent.

A catalogue splits one interest over several categories (rackets, strings, tournament
tickets). Cutting a memory at every category change would shred one intent into
fragments, so categories are grouped by how often they co-occur within a session (a
run of one person's events without a gap): a pair is linked when it shares at least
`min_share` of the rarer category's sessions (and `min_sessions` sessions), and the
families are the connected components of those links. Rare accidental co-occurrences
stay below the threshold, so unrelated interests are not chained together.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


def sessions(events: pl.DataFrame, gap_minutes: float = 30) -> pl.Series:
    """Session number per event (events sorted by person and time): a new person or a gap starts one."""
    gap = pl.duration(microseconds=int(gap_minutes * 60 * 1_000_000))
    return events.select(
        ((pl.col("person_id") != pl.col("person_id").shift(1)) | ((pl.col("ts") - pl.col("ts").shift(1)) > gap))
        .fill_null(True)
        .cum_sum()
        .alias("session")
    ).to_series()


def fit_intent_families(
    events: pl.DataFrame, gap_minutes: float = 30, min_share: float = 0.05, min_sessions: int = 3
) -> dict[str, str]:
    """Category -> family name (the family's most frequent category), from categorised events."""
    ordered = events.sort("person_id", "ts", "event_id")
    return families_of_sessions(sessions(ordered, gap_minutes), ordered["category"], min_share, min_sessions)


def families_of_sessions(
    session: pl.Series, category: pl.Series, min_share: float = 0.05, min_sessions: int = 3
) -> dict[str, str]:
    """`fit_intent_families` from each event's session number (as `sessions` numbers them) and category."""
    categorised = pl.DataFrame({"session": session, "category": category}).filter(pl.col("category").is_not_null())
    if categorised.is_empty():
        return {}
    names_in_order = categorised["category"].unique().sort()
    # An Enum of the sorted names codes each category by its rank, without a string sort or numpy objects.
    codes = categorised["category"].cast(pl.Enum(names_in_order)).to_physical().to_numpy()
    categories = names_in_order.to_numpy()
    session_numbers = categorised["session"].to_numpy()
    incidence = sp.csr_matrix(
        (np.ones(codes.size), (session_numbers, codes)), shape=(session_numbers.max() + 1, categories.size)
    )
    incidence.data[:] = 1.0  # the matrix summed repeated (session, category) pairs: a session counts once
    together = (incidence.T @ incidence).toarray()
    frequency = np.diag(together).copy()
    linked = (together >= np.maximum(min_sessions, min_share * np.minimum.outer(frequency, frequency)))
    np.fill_diagonal(linked, False)
    _, family = connected_components(sp.csr_matrix(linked), directed=False)
    names = {}
    for member in np.unique(family):
        in_family = np.flatnonzero(family == member)
        names[member] = categories[in_family[np.argmax(frequency[in_family])]]
    return {category: names[member] for category, member in zip(categories, family, strict=True)}


def apply_intent_families(events: pl.DataFrame, families: dict[str, str], column: str = "intent") -> pl.DataFrame:
    """Replace each intent by its family; intents outside every family stay as they are."""
    if not families:
        return events
    return events.with_columns(pl.col(column).replace(list(families), list(families.values())))
