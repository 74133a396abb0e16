"""Bring your own log: an events file plus an items file become daily landing files.

The log then flows through staging, memories and personas like the built-in sources.
A file missing a required column fails at once, naming the file and the columns it
needs. Row-level problems never drop a row: every row is landed with its origin
(`file:line`), and staging rejects the ones with an unparseable timestamp or an object
missing from the items file, so they end in `rejected_events` with that origin.
"""

import hashlib
from datetime import date
from pathlib import Path

import polars as pl

from dagster_project.ingest.landing import LANDING_ENTITIES

EVENT_COLUMNS = ("person_id", "timestamp", "object_id", "action")
ITEM_COLUMNS = ("object_id", "title", "categories")
IMPORT_ENTITY = next(entity for entity in LANDING_ENTITIES if entity.source == "import")
SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"


class ImportFileError(ValueError):
    """An import file that cannot be used at all."""


def _read_table(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    """CSV (all columns as text) or Parquet, with a line number per row and the required columns checked."""
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
        first_line = 1  # Parquet rows are numbered from 1
    else:
        try:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
        except pl.exceptions.ComputeError as error:
            raise ImportFileError(f"{path}: not a readable CSV file ({error})") from error
        first_line = 2  # line 1 is the header
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ImportFileError(
            f"{path}:1: missing column(s) {', '.join(missing)}; expected columns {', '.join(required)} "
            f"(found {', '.join(frame.columns) or 'none'})"
        )
    return frame.with_row_index("line", offset=first_line)


def _parse_timestamps(text: pl.Expr) -> pl.Expr:
    """ISO 8601 (a zone offset is converted to UTC, none means UTC) or Unix seconds."""
    stripped = text.str.strip_chars()
    unix_seconds = stripped.cast(pl.Float64, strict=False)
    from_unix = pl.from_epoch((unix_seconds * 1_000_000).cast(pl.Int64, strict=False), time_unit="us")
    with_zone = stripped.str.to_datetime(time_zone="UTC", strict=False, time_unit="us").dt.replace_time_zone(None)
    naive = stripped.str.to_datetime(strict=False, time_unit="us")
    return pl.when(unix_seconds.is_not_null()).then(from_unix).otherwise(pl.coalesce(with_zone, naive))


def import_log(home: Path, events_path: Path, items_path: Path, source: str = "import") -> dict:
    """Land the log as daily `landing/import/events/<day>.csv` files; returns counts per day.

    Re-importing the same files rewrites the same lines (event ids derive from the origin),
    so an import is idempotent.
    """
    if not pl.Series([source]).str.contains(SOURCE_NAME_PATTERN).item():
        raise ImportFileError(f"--source {source!r}: expected lower-case letters, digits and underscores")
    events = _read_table(events_path, EVENT_COLUMNS)
    items = _read_table(items_path, ITEM_COLUMNS)
    duplicated = items.filter(pl.col("object_id").is_duplicated())
    if not duplicated.is_empty():
        first = duplicated.row(0, named=True)
        raise ImportFileError(f"{items_path}:{first['line']}: object_id {first['object_id']!r} appears more than once")
    catalogue = items.select(
        "object_id",
        "title",
        category=pl.col("categories").str.strip_chars().str.replace_all(r"[|\s]+", " ").str.split(" ").list.first(),
        object_known=pl.lit("true"),
    )
    origin_prefix = events_path.name
    landed = (
        events.with_columns(parsed_ts=_parse_timestamps(pl.col("timestamp")))
        .join(catalogue, on="object_id", how="left", maintain_order="left")
        .with_columns(
            origin=pl.lit(f"{origin_prefix}:") + pl.col("line").cast(pl.String),
            object_known=pl.col("object_known").fill_null("false"),
            source=pl.lit(source),
        )
    )
    first_day = landed["parsed_ts"].min()
    fallback_day = first_day.date() if first_day is not None else date.today()
    digest = hashlib.sha256(events_path.read_bytes()).hexdigest()[:8]
    landed = landed.with_columns(
        event_id=pl.lit(f"{source}-{digest}-") + pl.col("line").cast(pl.String),
        # An unparseable timestamp keeps its text and lands on the import's first day, where staging rejects it.
        ts=pl.when(pl.col("parsed_ts").is_not_null())
        .then(pl.col("parsed_ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
        .otherwise(pl.col("timestamp")),
        day=pl.col("parsed_ts").dt.date().fill_null(fallback_day),
    )
    written = {}
    for (day,), rows in landed.sort("day", "line").partition_by("day", as_dict=True, maintain_order=True).items():
        path = IMPORT_ENTITY.path(home / "landing", day)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = rows.select(IMPORT_ENTITY.csv_columns)
        if path.exists():  # other sources imported for the same day stay
            others = pl.read_csv(path, infer_schema=False).filter(pl.col("source") != source)
            rows = pl.concat([others, rows])
        rows.write_csv(path)
        written[day.isoformat()] = rows.height
    return {
        "days": written,
        "events": events.height,
        "unparseable_timestamps": int(landed["parsed_ts"].is_null().sum()),
        "unknown_objects": int((landed["object_known"] == "false").sum()),
    }
