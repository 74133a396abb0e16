"""Day-over-day persona drift between two consecutive model dates.

Pure: frames and arrays in, numbers and frames out (no Dagster, no DuckDB). Every metric
is 0 when nothing moved:

* share_psi: Population Stability Index of the personas' shares of the previous day's
  memories against the day's, both as today's model assigns them (PSI compares two
  samples over the same bins; refits that split or merge personas would otherwise count
  as drift). Epsilon smoothing for personas without memories on one of the days.
* max_centroid_shift: the largest cosine distance between a persona's centroid yesterday
  and today, both computed in today's vector space from the memories the two windows share.
* assignment_churn: share of the people present both days whose top persona changed.
* new_persona_uptake: share of the people active on the day, with memories on at least
  `MIN_HISTORY_DAYS` earlier days of the window, whose memories of the day fall in a
  persona none of their earlier memories had (today's model on both sides). People
  taking up new interests is what persona drift looks like at the person level; the
  window-weighted shares above barely move on the day it starts.
* born_share / retired_share: share of today's persona weight held by personas born today,
  and of yesterday's held by personas that merged into another or retired today, as the
  persona lineage records them (a persona missing for a day is dormant, not retired, and a
  split is not a birth). Without lineage (homes fitted before it): personas that did not
  exist yesterday (no longer exist today).
* label_changes: share of the personas present both days whose label changed.

A metric breaches when it passes its threshold and, for the two with a sampling model, what
chance alone reaches on the day's counts without any change (``CHANCE_QUANTILE``): share_psi
(``psi_chance_floor``) and new_persona_uptake (``uptake_chance_floor``). On a sparse log a day
holds a few hundred memories of a few dozen returning people, and both metrics then pass the
thresholds calibrated on the sample world by chance alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from statistics import NormalDist

import numpy as np
import polars as pl
import scipy.sparse as sp

from dagster_project.science.clustering import weighted_centroids
from dagster_project.science.vectorize import MemoryVectorizer

EPSILON = 1e-4
MIN_HISTORY_DAYS = 3
SHARE_MOVE = 0.15  # a persona whose share moved by more than this (relative) is listed as moved
CHANCE_QUANTILE = 0.99  # a breach must pass what chance alone reaches on 99 days of 100 without change
CHANCE_DRAWS = 2000  # simulated days behind each chance floor
SIMULATED_PEOPLE = 500  # more returning people than this: the uptake's chance floor is its normal quantile


@dataclass(frozen=True)
class DriftThresholds:
    """A metric above its threshold is a breach ("moved by more than 15%" unless calibrated otherwise).

    Calibrated on the sample data (`personas generate` defaults: 2000 people, 14 days, 20%
    of people taking up a new persona on 2026-10-10). On the drift day only
    new_persona_uptake moves (0.158); on the other judged days it stays at or below 0.091,
    hence 0.12. Splits and merges of the model (a persona born or retired with 3-4% of
    the weight on 10-05, 10-06, 10-08, 10-09, 10-13, 10-14) stay under the structural
    thresholds; labels are renamed on up to a quarter of the personas on quiet days.
    """

    share_psi: float = 0.15
    max_centroid_shift: float = 0.15
    assignment_churn: float = 0.15
    new_persona_uptake: float = 0.12
    born_share: float = 0.15
    retired_share: float = 0.15
    label_changes: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


DRIFT_METRICS = tuple(DriftThresholds().as_dict())


def population_stability_index(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """PSI = sum((a - e) * ln(a / e)) over the same bins; counts or shares, each side normalised first.

    Bins empty on one side are raised to `epsilon`, so a persona without memories on
    one day adds a large but finite term. 0 when both sides are empty.
    """
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    return float(_smoothed_psi(expected / expected.sum(), actual / actual.sum(), epsilon))


def _smoothed_psi(expected_shares: np.ndarray, actual_shares: np.ndarray, epsilon: float) -> np.ndarray:
    """PSI over the last axis of two arrays of shares, shares under `epsilon` raised to it."""
    e, a = np.maximum(expected_shares, epsilon), np.maximum(actual_shares, epsilon)
    return np.sum((a - e) * np.log(a / e), axis=-1)


def psi_chance_floor(expected: np.ndarray, actual: np.ndarray, quantile: float = CHANCE_QUANTILE,
                     draws: int = CHANCE_DRAWS, epsilon: float = EPSILON) -> float:
    """The PSI two days of these sizes stay under with probability `quantile` when nothing changed.

    Both days' counts are drawn `draws` times from their pooled shares with their own sizes and
    scored as `population_stability_index` scores them, smoothing included (seeded: the same counts
    give the same floor). On 150 memories a day over 13 personas the floor is about 0.4, on the
    sample world's 700 about 0.08: a threshold of 0.15 is passed by chance alone on most sparse days.
    0 without counts on both days.
    """
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    pooled = (expected + actual) / (expected + actual).sum()
    rng = np.random.default_rng(0)
    psis = _smoothed_psi(rng.multinomial(int(expected.sum()), pooled, size=draws) / expected.sum(),
                         rng.multinomial(int(actual.sum()), pooled, size=draws) / actual.sum(), epsilon)
    return float(np.quantile(psis, quantile))


def todays_vectors(window: pl.DataFrame) -> sp.csr_matrix:
    """The window's memories, in its order, in the day's word, intent and source space.

    The vectoriser is refitted on the window: TF-IDF fitting is deterministic, so the same window
    gives the same space without storing a vectoriser next to the tables. It is `fit_day`'s
    vectoriser without its context block (the people's PPMI embedding): word counts, intents and
    sources do not depend on row order, and fitting and transforming in one pass counts the
    n-grams once (a 30k-event day's 75k-memory window: 1.2-2.9 s against 2.6-3.6 s for a fit, then
    a transform that counted them again; the vectors agree within float32 rounding, 1.2e-7).
    """
    return MemoryVectorizer().fit_transform(window)


def centroid_shifts(vectors: sp.csr_matrix, previous_ids: np.ndarray, current_ids: np.ndarray) -> dict[int, float]:
    """Cosine distance between each persona's centroid by yesterday's and by today's assignments.

    Rows of `vectors` are memories; `previous_ids`/`current_ids` their persona on each
    day, -1 where a day did not assign them. Only personas both days assign are compared.
    """
    previous_ids, current_ids = np.asarray(previous_ids), np.asarray(current_ids)
    shared = sorted(set(previous_ids[previous_ids >= 0].tolist()) & set(current_ids[current_ids >= 0].tolist()))
    if not shared:
        return {}
    return {
        persona_id: float(
            1.0 - _centroid(vectors, previous_ids == persona_id) @ _centroid(vectors, current_ids == persona_id)
        )
        for persona_id in shared
    }


def _centroid(vectors: sp.csr_matrix, members: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(members)
    return weighted_centroids(vectors[rows], np.zeros(rows.size, dtype=np.int64), np.ones(rows.size), 1)[0]


def top_persona_churn(previous: pl.DataFrame, current: pl.DataFrame) -> float:
    """Share of the people in both frames (person_id, persona_id, weight) whose heaviest persona changed."""
    both = _top_persona(previous).join(_top_persona(current), on="person_id", suffix="_today")
    if both.is_empty():
        return 0.0
    return float((both["persona_id"] != both["persona_id_today"]).mean())


def _top_persona(user_personas: pl.DataFrame) -> pl.DataFrame:
    return (
        user_personas.sort("person_id", "weight", "persona_id", descending=[False, True, False])
        .group_by("person_id", maintain_order=True)
        .agg(pl.col("persona_id").first())
    )


def new_persona_uptake(
    assigned: pl.DataFrame, day: dt.date, min_history_days: int = MIN_HISTORY_DAYS
) -> tuple[float, pl.DataFrame]:
    """Share of established people who took up a persona new to them on `day`, and who took up which.

    `assigned`: the window's memories as today's model assigned them (person_id,
    event_date, persona_id). Established people were active on `day` and on at least
    `min_history_days` earlier days. Returns the share and (person_id, persona_id) uptakes.
    """
    earlier, todays = _established_memories(assigned, day, min_history_days)
    todays = todays.select("person_id", "persona_id").unique()
    uptakes = todays.join(earlier.select("person_id", "persona_id"), on=["person_id", "persona_id"], how="anti")
    active = todays["person_id"].n_unique()
    return (uptakes["person_id"].n_unique() / active if active else 0.0), uptakes.sort("person_id", "persona_id")


def uptake_chance_floor(
    assigned: pl.DataFrame, day: dt.date, quantile: float = CHANCE_QUANTILE, min_history_days: int = MIN_HISTORY_DAYS
) -> float:
    """The `new_persona_uptake` chance alone stays under with probability `quantile` when no one's interests moved.

    A person's earlier memories are a sample of their personas; that one more memory falls in a
    persona the sample lacks has the Good-Turing probability f1 / N (their personas seen in one
    earlier memory only, over their N earlier memories), so the day's m memories take one up with
    1 - (1 - f1 / N)^m. The people's uptakes are drawn `CHANCE_DRAWS` times from these chances
    (seeded) and the floor is the `quantile` of the shares; over `SIMULATED_PEOPLE` people, the
    normal quantile of their sum. On the sample world's days before its drift the uptake stays near
    or below its expectation (0.05-0.08 against 0.08-0.15); on a sparse log, a few earlier memories a
    person, the expectation is 0.25.
    """
    earlier, todays = _established_memories(assigned, day, min_history_days)
    if todays.is_empty():
        return 0.0
    history = (
        earlier.join(todays.select("person_id").unique(), on="person_id")
        .group_by("person_id", "persona_id").len()
        .group_by("person_id").agg(memories=pl.col("len").sum(), singletons=(pl.col("len") == 1).sum())
    )
    chances = (
        todays.group_by("person_id").len()
        .join(history, on="person_id")
        .select(1 - (1 - pl.col("singletons") / pl.col("memories")) ** pl.col("len"))
        .to_series().sort()  # summed in one order whatever the row order
        .to_numpy()
    )
    if chances.size > SIMULATED_PEOPLE:  # a sum of that many draws is normal; simulating it costs 0.4 s a 5,000
        spread = NormalDist().inv_cdf(quantile) * np.sqrt((chances * (1 - chances)).sum())
        return float((chances.sum() + spread) / chances.size)
    uptakes = (np.random.default_rng(0).random((CHANCE_DRAWS, chances.size)) < chances).mean(axis=1)
    return float(np.quantile(uptakes, quantile))


def _established_memories(
    assigned: pl.DataFrame, day: dt.date, min_history_days: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The window's memories before `day`, and those of `day` of the people active on `min_history_days` earlier days."""
    earlier = assigned.filter(pl.col("event_date") < day)
    established = (
        earlier.group_by("person_id").agg(pl.col("event_date").n_unique().alias("days"))
        .filter(pl.col("days") >= min_history_days)
        .select("person_id")
    )
    return earlier, assigned.filter(pl.col("event_date") == day).join(established, on="person_id")


@dataclass
class DayDrift:
    """Metric values of one day, what each persona did, and whether the day can be judged yet.

    A window with fewer than `MIN_HISTORY_DAYS` days before the day holds a model too
    young to compare: its metrics are recorded but never breach. `chance_floors`: for the metrics
    with a sampling model, the value chance alone reaches on the day's counts (a breach must pass it).
    """

    metrics: dict[str, float]
    personas: pl.DataFrame
    warming_up: bool
    chance_floors: dict[str, float] = field(default_factory=dict)


def day_drift(
    day: dt.date,
    previous_personas: pl.DataFrame,
    personas: pl.DataFrame,
    previous_user_personas: pl.DataFrame,
    user_personas: pl.DataFrame,
    window: pl.DataFrame,
    previous_assignments: pl.DataFrame,
    lineage: pl.DataFrame | None = None,
) -> DayDrift:
    """Every drift metric of `day` against the day before.

    personas: persona_id, label, share (the `personas` rows of each day); user_personas:
    person_id, persona_id, weight; window: the memories of the day's window with the
    persona the day's model assigned (memory_id, person_id, event_date, text, intent,
    sources, persona_id); previous_assignments: memory_id, persona_id of the day before;
    lineage: the day's persona-level `persona_lineage` rows (persona_id, event).
    """
    assigned = window.join(
        previous_assignments.select("memory_id", previous_persona_id="persona_id"), on="memory_id", how="left"
    ).sort("event_date", "memory_id")
    bins = personas["persona_id"].sort()
    day_counts = [
        _counts(assigned.filter(pl.col("event_date") == date), bins) for date in (day - dt.timedelta(days=1), day)
    ]
    shifts = centroid_shifts(
        todays_vectors(assigned),
        assigned["previous_persona_id"].fill_null(-1).to_numpy(),
        assigned["persona_id"].to_numpy(),
    )
    uptake, uptakes = new_persona_uptake(assigned, day)
    details = persona_details(previous_personas, personas, shifts, uptakes, lineage)
    kept = details.filter(pl.col("status") == "kept")
    metrics = {
        "share_psi": population_stability_index(*day_counts),
        "max_centroid_shift": max(shifts.values(), default=0.0),
        "assignment_churn": top_persona_churn(previous_user_personas, user_personas),
        "new_persona_uptake": uptake,
        "born_share": float(details.filter(pl.col("status") == "born")["share_today"].sum()),
        "retired_share": float(
            details.filter(pl.col("status").is_in(["retired", "merged"]))["share_yesterday"].fill_null(0.0).sum()
        ),
        "label_changes": float(kept["label_changed"].mean()) if kept.height else 0.0,
    }
    earlier_days = assigned.filter(pl.col("event_date") < day)["event_date"].n_unique()
    chance_floors = {"share_psi": psi_chance_floor(*day_counts),
                     "new_persona_uptake": uptake_chance_floor(assigned, day)}
    return DayDrift(metrics=metrics, personas=details, warming_up=earlier_days < MIN_HISTORY_DAYS,
                    chance_floors=chance_floors)


def drift_rows(day: dt.date, drift: DayDrift, thresholds: DriftThresholds) -> pl.DataFrame:
    """The `persona_drift` rows of a day: event_date, metric, value, threshold, chance_floor (null for a metric
    without a sampling model), breached (past its threshold and its chance floor, once the model can be judged)."""
    limits = thresholds.as_dict()
    floors = [drift.chance_floors.get(metric) for metric in limits]
    return pl.DataFrame(
        {
            "event_date": [day] * len(limits),
            "metric": list(limits),
            "value": [drift.metrics[metric] for metric in limits],
            "threshold": list(limits.values()),
            "chance_floor": floors,
            "breached": [
                not drift.warming_up and drift.metrics[metric] > max(limit, floor or 0.0)
                for (metric, limit), floor in zip(limits.items(), floors, strict=True)
            ],
        },
        schema={
            "event_date": pl.Date, "metric": pl.String, "value": pl.Float64, "threshold": pl.Float64,
            "chance_floor": pl.Float64, "breached": pl.Boolean,
        },
    )


def _counts(assigned: pl.DataFrame, bins: pl.Series) -> np.ndarray:
    counts = dict(assigned.group_by("persona_id").len().iter_rows())
    return np.array([counts.get(persona_id, 0) for persona_id in bins.to_list()], dtype=float)


# Lineage event -> drift status; a persona of yesterday with no event today is dormant.
LINEAGE_STATUS = {"born": "born", "continued": "kept", "split_from": "split", "merged_into": "merged", "retired": "retired"}


def persona_details(
    previous_personas: pl.DataFrame,
    personas: pl.DataFrame,
    shifts: dict[int, float],
    uptakes: pl.DataFrame,
    lineage: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per persona of either day: status (kept, born, split, merged, dormant, retired from
    the lineage; kept, born, retired without it), labels, shares, centroid shift, uptakes."""
    taken_up = uptakes.group_by("persona_id").agg(pl.len().alias("people_taking_up"))
    shift_frame = pl.DataFrame(
        {"persona_id": list(shifts), "centroid_shift": list(shifts.values())},
        schema={"persona_id": pl.Int64, "centroid_shift": pl.Float64},
    )
    details = previous_personas.select("persona_id", label_yesterday="label", share_yesterday="share").join(
        personas.select("persona_id", label_today="label", share_today="share"), on="persona_id", how="full",
        coalesce=True,
    )
    if lineage is not None:
        # A persona retiring from the identity memory was last seen days ago: it joins with no share.
        details = details.join(
            lineage.select("persona_id", "event").unique("persona_id", keep="last"), on="persona_id", how="full",
            coalesce=True,
        )
    return (
        details
        .join(shift_frame, on="persona_id", how="left")
        .join(taken_up.with_columns(pl.col("persona_id").cast(pl.Int64)), on="persona_id", how="left")
        .with_columns(
            status=_status(lineage),
            label_changed=pl.col("label_yesterday").is_not_null() & pl.col("label_today").is_not_null()
            & (pl.col("label_yesterday") != pl.col("label_today")),
            share_change=(pl.col("share_today") - pl.col("share_yesterday")) / pl.col("share_yesterday"),
            people_taking_up=pl.col("people_taking_up").fill_null(0),
        )
        .drop("event", strict=False)
        .sort("persona_id")
    )


def _status(lineage: pl.DataFrame | None) -> pl.Expr:
    if lineage is None:
        return (pl.when(pl.col("share_yesterday").is_null()).then(pl.lit("born"))
                .when(pl.col("share_today").is_null()).then(pl.lit("retired")).otherwise(pl.lit("kept")))
    return pl.col("event").replace_strict(LINEAGE_STATUS, default="dormant")


def moved_personas(details: pl.DataFrame, max_centroid_shift: float, share_move: float = SHARE_MOVE) -> list[str]:
    """How each persona that moved did, most taken up first.

    Moved: born, retired, relabelled, share changed by more than `share_move` of itself,
    centroid shifted by more than `max_centroid_shift`, or taken up by people new to it.
    """
    moved = details.filter(
        (pl.col("status") != "kept")
        | pl.col("label_changed")
        | (pl.col("share_change").abs() > share_move)
        | (pl.col("centroid_shift") > max_centroid_shift)
        | (pl.col("people_taking_up") > 0)
    ).sort("people_taking_up", "persona_id", descending=[True, False])
    return [_how(row) for row in moved.iter_rows(named=True)]


def _how(row: dict) -> str:
    label = row["label_today"] or row["label_yesterday"] or ""
    before = f"{row['share_yesterday'] or 0.0:.1%}"
    if row["status"] in ("born", "split"):
        changes = [f"{'born' if row['status'] == 'born' else 'split off'} with {row['share_today']:.1%} of the weight"]
    elif row["status"] in ("retired", "merged", "dormant"):
        changes = [f"{row['status']}, had {before} of the weight"]
    elif row["share_yesterday"] is None:
        changes = [f"back after missing days with {row['share_today']:.1%} of the weight"]
    else:
        changes = [f"share {before} -> {row['share_today']:.1%} ({row['share_change']:+.0%})"]
    if row["label_changed"]:
        changes.append(f"relabelled from '{row['label_yesterday']}'")
    if row["centroid_shift"] is not None:
        changes.append(f"centroid shift {row['centroid_shift']:.3f}")
    if row["people_taking_up"]:
        changes.append(f"taken up by {row['people_taking_up']} people new to it")
    return f"{row['persona_id']} {label}: " + "; ".join(changes)
