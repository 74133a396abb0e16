"""Broken records as the landing contract lists them, each broken in exactly one way.

A broken record replaces a clean one (except `duplicate`, an extra exact copy of an earlier
clean line), so its expected reject reason is unambiguous. Kinds rotate per entity across
files, so every kind that applies to an entity shows up once enough records are broken.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from .formats import MS_PER_DAY, iso_ms_series
from .landing import INVALID_UTF8_MARKER, LandingSpec
from .randomness import stochastic_round

EXPECTED_REASON = {
    "bad_json": "malformed_record",
    "wrong_field_count": "malformed_record",
    "missing_id": "missing_id",
    "unparseable_timestamp": "unparseable_timestamp",
    "future_timestamp": "future_timestamp",
    "wrong_day_timestamp": "timestamp_outside_partition",
    "duplicate": "duplicate",
    "wrong_type": "wrong_type",
    "negative_amount": "negative_amount",
    "bad_encoding": "bad_encoding",
    "unknown_action": "unknown_action",
}
UNPARSEABLE_TIMESTAMPS = ("yesterday noon", "2026-13-45T99:00", "32/10/2026 25:61", "noon-ish", "not a time")
UNKNOWN_ACTIONS = {
    "event_type": ("hover", "scroll", "wishlist", "refresh"),
    "action": ("retweet", "bookmark", "follow", "dislike"),
}
TEXT_IN_NUMBER = ("three", "twelve euros", "unknown", "high", "error")
FUTURE_YEAR = "2099"
ABSENT_MARKER = "\ue001"  # JSON: the key holding it is removed from the line
DROPPED_MARKER = "\ue002"  # CSV: the field holding it is removed with its separator
EXTRA_FIELD = ",extra"


def kinds_for(spec: LandingSpec) -> tuple[str, ...]:
    """The kinds that apply to an entity: its format's malformation, the common kinds, action and number kinds."""
    kinds = [
        "bad_json" if spec.fmt == "jsonl" else "wrong_field_count",
        "missing_id",
        "unparseable_timestamp",
        "future_timestamp",
        "wrong_day_timestamp",
        "duplicate",
        "bad_encoding",
    ]
    if spec.action_field:
        kinds.append("unknown_action")
    if spec.number_fields:
        kinds.append("wrong_type")
    if spec.amount_field:
        kinds.append("negative_amount")
    return tuple(kinds)


class KindRotation:
    """Hands out an entity's applicable kinds in turn, continuing where the previous file stopped."""

    def __init__(self, spec: LandingSpec) -> None:
        self.kinds = np.array(kinds_for(spec), dtype=object)
        self.position = 0

    def take(self, count: int) -> np.ndarray:
        taken = self.kinds[(self.position + np.arange(count)) % len(self.kinds)]
        self.position += count
        return taken


@dataclass(frozen=True)
class BrokenPlan:
    rows_by_kind: dict[str, np.ndarray]  # rows replaced by a broken version, per kind (no duplicates)
    duplicate_of: np.ndarray  # clean rows copied once more
    insert_before: np.ndarray  # each copy goes right before this row (len(frame) = at the end)

    def kind_of_rows(self, count: int) -> pl.Series:
        """The broken kind of each original row, null where clean."""
        code = np.full(count, -1, dtype=np.int64)
        for index, rows in enumerate(self.rows_by_kind.values()):
            code[rows] = index
        names = dict(enumerate(self.rows_by_kind))
        return pl.Series(code).replace_strict(names, default=None, return_dtype=pl.String)


def plan_broken(rng: np.random.Generator, rotation: KindRotation, count: int, share: float) -> BrokenPlan:
    """Pick which of `count` rows break and how: about `share` of them, duplicates copying clean rows."""
    kinds = rotation.take(stochastic_round(rng, share * count) if count else 0)
    replaced = kinds[kinds != "duplicate"]
    rows = rng.choice(count, size=len(replaced), replace=False)
    rows_by_kind = {kind: np.sort(rows[replaced == kind]) for kind in np.unique(replaced)}
    clean = np.setdiff1d(np.arange(count), rows)
    copies = int((kinds == "duplicate").sum()) if len(clean) else 0
    duplicate_of = np.sort(rng.choice(clean, size=copies, replace=copies > len(clean)))
    insert_before = rng.integers(duplicate_of + 1, count + 1) if copies else np.zeros(0, dtype=np.int64)
    return BrokenPlan(rows_by_kind=rows_by_kind, duplicate_of=duplicate_of, insert_before=insert_before)


def break_fields(
    rng: np.random.Generator, spec: LandingSpec, frame: pl.DataFrame, plan: BrokenPlan
) -> tuple[pl.DataFrame, np.ndarray]:
    """Field-level damage before encoding; returns the frame and the rows whose record id was removed."""
    columns = {name: frame[name].clone() for name in spec.fields}
    missing_record_id = np.zeros(0, dtype=np.int64)
    for kind, rows in plan.rows_by_kind.items():
        if kind == "missing_id":
            missing_record_id = _remove_ids(rng, spec, columns, rows)
        elif kind == "unparseable_timestamp":
            columns[spec.ts_field].scatter(rows, _pick(rng, UNPARSEABLE_TIMESTAMPS, len(rows)))
        elif kind == "future_timestamp":
            current = columns[spec.ts_field].gather(rows)
            future = (FUTURE_YEAR + current.str.slice(4)).str.replace(r"^2099-02-29", "2099-02-28")
            columns[spec.ts_field].scatter(rows, future)
        elif kind == "wrong_day_timestamp":
            shift = rng.integers(1, 4, size=len(rows)) * MS_PER_DAY
            columns[spec.ts_field].scatter(rows, iso_ms_series(frame["_ts_ms"].to_numpy()[rows] - shift))
        elif kind == "bad_encoding":
            text = columns[spec.text_field].gather(rows)
            half = text.str.len_chars() // 2
            corrupted = pl.select(
                pl.concat_str(pl.lit(text).str.head(half), pl.lit(INVALID_UTF8_MARKER), pl.lit(text).str.slice(half))
            ).to_series()
            columns[spec.text_field].scatter(rows, corrupted)
        elif kind == "unknown_action":
            columns[spec.action_field].scatter(rows, _pick(rng, UNKNOWN_ACTIONS[spec.action_field], len(rows)))
        elif kind == "wrong_type":
            field = rng.integers(len(spec.number_fields), size=len(rows))
            for index, name in enumerate(spec.number_fields):
                chosen = rows[field == index]
                columns[name].scatter(chosen, _pick(rng, TEXT_IN_NUMBER, len(chosen)))
        elif kind == "negative_amount":
            columns[spec.amount_field].scatter(rows, "-" + columns[spec.amount_field].gather(rows))
        elif kind == "wrong_field_count":
            dropped = rows[rng.random(len(rows)) < 0.5]
            columns[spec.fields[1]].scatter(dropped, DROPPED_MARKER)
    return frame.with_columns(**columns), missing_record_id


def _remove_ids(
    rng: np.random.Generator, spec: LandingSpec, columns: dict[str, pl.Series], rows: np.ndarray
) -> np.ndarray:
    """Blank the record id or the actor id; JSON lines vary between null, empty and an absent key."""
    on_record_id = (rng.random(len(rows)) < 0.5) | (spec.actor_field == spec.id_field)
    variants = (None, "", ABSENT_MARKER) if spec.fmt == "jsonl" else ("",)
    variant = rng.integers(len(variants), size=len(rows))
    for field, chosen in ((spec.id_field, on_record_id), (spec.actor_field, ~on_record_id)):
        for index, value in enumerate(variants):
            columns[field].scatter(rows[chosen & (variant == index)], value)
    return rows[on_record_id]


def break_lines(lines: pl.Series, plan: BrokenPlan) -> pl.Series:
    """Line-level damage after encoding: cut JSON, absent keys, wrong CSV field counts."""
    lines = lines.clone()
    if (rows := plan.rows_by_kind.get("bad_json")) is not None:
        current = lines.gather(rows)
        lines.scatter(rows, current.str.head(current.str.len_chars() // 2))
    if (rows := plan.rows_by_kind.get("missing_id")) is not None:
        absent_key = f'"[a-z_]+":"{ABSENT_MARKER}",'
        lines.scatter(rows, lines.gather(rows).str.replace(absent_key, ""))
    if (rows := plan.rows_by_kind.get("wrong_field_count")) is not None:
        current = pl.DataFrame({"line": lines.gather(rows)})
        fixed = current.select(
            pl.when(pl.col("line").str.contains(DROPPED_MARKER, literal=True))
            .then(pl.col("line").str.replace("," + DROPPED_MARKER, "", literal=True))
            .otherwise(pl.col("line") + EXTRA_FIELD)
        ).to_series()
        lines.scatter(rows, fixed)
    return lines


def _pick(rng: np.random.Generator, choices: tuple[str, ...], count: int) -> pl.Series:
    return pl.Series(choices, dtype=pl.String).gather(rng.integers(len(choices), size=count))
