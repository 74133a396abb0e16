"""Vectorised formatting of identifiers, timestamps and fixed-point numbers as the landing contract spells them."""

import numpy as np
import polars as pl

MS_PER_DAY = 86_400_000
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def iso_ms(ms: pl.Expr) -> pl.Expr:
    """Epoch milliseconds -> `2026-10-01T09:14:03.120Z`."""
    return pl.from_epoch(ms, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")


def iso_ms_series(ms: np.ndarray) -> pl.Series:
    return pl.select(iso_ms(pl.lit(pl.Series(ms, dtype=pl.Int64)))).to_series()


def fixed_point(scaled: pl.Expr, decimals: int) -> pl.Expr:
    """An integer holding value * 10**decimals -> its decimal text with exactly `decimals` digits."""
    unit = 10**decimals
    magnitude = scaled.abs()
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str(
        sign,
        (magnitude // unit).cast(pl.String),
        pl.lit("."),
        (magnitude % unit).cast(pl.String).str.zfill(decimals),
    )


def hex_ids(prefix: str, values: np.ndarray, width: int) -> pl.Series:
    """Non-negative integers -> `prefix` + `width` lowercase hex digits, without a Python loop."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    digits = np.ascontiguousarray(_HEX_DIGITS[nibbles]).view(f"S{width}").ravel()
    return _prefixed(prefix, pl.Series(digits.astype(f"U{width}")))


def unique_hex_ids(rng: np.random.Generator, prefix: str, count: int, width: int) -> pl.Series:
    values = rng.choice(16**width, size=count, replace=False) if count else np.zeros(0, dtype=np.int64)
    return hex_ids(prefix, values, width)


def numbered_ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """`P000001`-style keys: prefix + zero-padded 1-based number."""
    return _prefixed(prefix, pl.Series(numbers, dtype=pl.Int64).cast(pl.String).str.zfill(width))


def _prefixed(prefix: str, values: pl.Series) -> pl.Series:
    return pl.select(pl.concat_str(pl.lit(prefix), pl.lit(values))).to_series()
