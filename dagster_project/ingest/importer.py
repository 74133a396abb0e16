"""Bring your own log: an events file plus an items file become daily landing files.

The log then flows through staging, memories and personas like the built-in sources.
A file missing a required column fails at once, naming the file and the columns it
needs. No row is lost: every row either lands, with its origin (`file:line`), on the
landing file of its UTC day, or, when no run could ever take it (a timestamp that does
not parse or lies in the future), is rejected at import and kept with its line and reason
in `import_rejects/<source>-<batch>.csv` under the home. A log older than the home's data
moves the home's first data day, and so its first partition, back to its first day.
Staging then rejects landed rows whose object is missing from the items file, so they end
in `rejected_events`: rows read = rows landed + rows rejected at import.

Each import is a batch (the first 8 hex digits of the events file's SHA-256): its event
ids are `<source>-<batch>-<line>`, so several imports of one source sit side by side in a
day's file, re-importing the same file rewrites the same lines, and `replace=True` removes
every earlier batch of the source first.
"""

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from dagster_project.ingest.landing import LANDING_ENTITIES, read_physical_lines
from dagster_project.paths import record_first_data_day
from dagster_project.privacy.pii import imported_person_hash_sql, pii_salt

EVENT_COLUMNS = ("person_id", "timestamp", "object_id", "action")
ITEM_COLUMNS = ("object_id", "title", "categories")
IMPORT_ENTITY = next(entity for entity in LANDING_ENTITIES if entity.source == "import")
BUILT_IN_SOURCES = tuple(sorted({entity.source for entity in LANDING_ENTITIES} - {IMPORT_ENTITY.source}))
SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
REJECTS_DIR = "import_rejects"
# Unix time by magnitude: below 1e11 seconds (until the year 5138), below 1e14 milliseconds
# (from 1973), below 1e17 microseconds, else nanoseconds. Value: microseconds per unit.
EPOCH_UNITS = ((1e11, 1_000_000.0), (1e14, 1_000.0), (1e17, 1.0))
# ISO 8601 after normalising (see _parse_timestamps): `%.f` takes an optional fraction, `%#z` an offset as
# +02:00, +0200 or +02.
ISO_FORMATS_WITH_OFFSET = ("%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M%#z")
ISO_FORMATS_NAIVE = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")
ISO_DATE = "%Y-%m-%d"


class ImportFileError(ValueError):
    """An import file (or source name) that cannot be used at all."""


@dataclass(frozen=True)
class ImportReport:
    source: str
    batch: str
    rows: int  # data rows read from the events file
    days: dict[str, int]  # day -> rows of this import landed on it
    rejected: dict[str, int]  # reason -> rows rejected at import
    rejects_file: Path | None
    unknown_objects: int  # landed, and rejected by staging as `unknown_object`
    replaced_days: list[str] = field(default_factory=list)  # days that lost earlier batches (--replace)

    @property
    def landed(self) -> int:
        return sum(self.days.values())


def check_source_name(source: str) -> None:
    """Refuse, before any work, a name staging could not accept or one that a built-in source owns."""
    if not pl.Series([source]).str.contains(SOURCE_NAME_PATTERN).item():
        raise ImportFileError(f"--source {source!r}: expected lower-case letters, digits and underscores")
    if source in BUILT_IN_SOURCES:
        raise ImportFileError(
            f"--source {source!r} is a built-in source ({', '.join(BUILT_IN_SOURCES)}), whose events staging "
            "checks against that source's own actions; choose another name, e.g. --source my_" + source
        )


def _read_table(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    """The required columns, as text, and each row's physical line number, from CSV or Parquet.

    Other columns are dropped here: an extra `title` or `category` in the events file must never stand in for
    the items file's own."""
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        frame = _check_columns(pl.read_parquet(path), path, required).select(pl.col(*required).cast(pl.String))
        return frame.with_row_index("line", offset=1)  # Parquet rows count from 1
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.ComputeError as error:
        raise ImportFileError(f"{path}: not a readable CSV file ({error})") from error
    frame = _check_columns(frame, path, required)
    # A quoted newline spreads a record over several lines: a row starts after the line
    # breaks of every row before it (line 1 is the header).
    breaks = pl.sum_horizontal(pl.all().str.count_matches("\n", literal=True).fill_null(0))
    line = (pl.int_range(2, pl.len() + 2) + breaks.cum_sum() - breaks).cast(pl.Int64)
    return frame.select(*required, line=line)


def _check_columns(frame: pl.DataFrame, path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ImportFileError(
            f"{path}:1: missing column(s) {', '.join(missing)}; expected columns {', '.join(required)} "
            f"(found {', '.join(frame.columns) or 'none'})"
        )
    return frame


def _parse_timestamps(text: pl.Expr) -> pl.Expr:
    """ISO 8601 (a zone offset is converted to UTC, none means UTC; a date alone is its midnight) or Unix time in
    s, ms, µs or ns by magnitude. Each row is tried against every explicit format (a coalesce), so one file may
    mix forms: Polars' own inference would pick one format from the first value and reject the rows of others."""
    stripped = text.str.strip_chars()
    number = stripped.cast(pl.Float64, strict=False)
    micros_per_unit = pl.lit(1e-3)  # nanoseconds
    for bound, micros in reversed(EPOCH_UNITS):
        micros_per_unit = pl.when(number.abs() < bound).then(micros).otherwise(micros_per_unit)
    from_unix = pl.from_epoch((number * micros_per_unit).cast(pl.Int64, strict=False), time_unit="us")
    # One spelling of the ISO variants: a space between date and time, `Z` as the offset +00:00.
    iso = stripped.str.replace(r"^(\d{4}-\d{2}-\d{2})[Tt ]\s*", "$1 ").str.replace(r"\s*[Zz]$", "+00:00")
    with_zone = [iso.str.to_datetime(form, time_zone="UTC", strict=False, time_unit="us").dt.replace_time_zone(None)
                 for form in ISO_FORMATS_WITH_OFFSET]
    naive = [iso.str.to_datetime(form, strict=False, time_unit="us") for form in ISO_FORMATS_NAIVE]
    midnight = iso.str.to_date(ISO_DATE, strict=False).cast(pl.Datetime("us"))
    return pl.when(number.is_not_null()).then(from_unix).otherwise(pl.coalesce(*with_zone, *naive, midnight))


def _import_reject_reason(parsed_ts: pl.Expr, now: datetime) -> pl.Expr:
    """Why no run could take the row, or null: any day up to today runs (the partitions start at the
    home's first data day, which an older log moves back)."""
    return (
        pl.when(parsed_ts.is_null()).then(pl.lit("unparseable_timestamp"))
        .when(parsed_ts > now).then(pl.lit("future_timestamp"))
    )


def _one_line(column: str) -> pl.Expr:
    """Line breaks inside a text field become spaces: a landing CSV record is one line."""
    return pl.col(column).str.replace_all(r"\r\n|\r|\n", " ")


def import_log(
    home: Path, events_path: Path, items_path: Path, source: str = "import", replace: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Land the log as daily `landing/import/events/<day>.csv` lines and keep the rows no run could take."""
    check_source_name(source)
    now = now or datetime.now(UTC).replace(tzinfo=None)
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
    batch = hashlib.sha256(events_path.read_bytes()).hexdigest()[:8]
    rows = (
        events.with_columns(parsed_ts=_parse_timestamps(pl.col("timestamp")))
        .join(catalogue, on="object_id", how="left", maintain_order="left")
        .with_columns(
            origin=pl.lit(f"{events_path.name}:") + pl.col("line").cast(pl.String),
            reason=_import_reject_reason(pl.col("parsed_ts"), now),
        )
    )
    rejected = rows.filter(pl.col("reason").is_not_null())
    landed = rows.filter(pl.col("reason").is_null()).with_columns(
        event_id=pl.lit(f"{source}-{batch}-") + pl.col("line").cast(pl.String),
        ts=pl.col("parsed_ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        object_known=pl.col("object_known").fill_null("false"),
        source=pl.lit(source),
        day=pl.col("parsed_ts").dt.date(),
    )
    replaced_days = _remove_earlier_batches(home, source) if replace else []
    days = _land(home, landed, f"{source}-{batch}-")
    if days:
        record_first_data_day(home, date.fromisoformat(min(days)))
    return ImportReport(
        source=source, batch=batch, rows=events.height, days=days,
        rejected=dict(sorted(rejected.group_by("reason").len().iter_rows())),
        rejects_file=_keep_rejected(home, rejected, source, batch),
        unknown_objects=int((landed["object_known"] == "false").sum()),
        replaced_days=sorted(set(replaced_days) - set(days)),
    )


def _land(home: Path, landed: pl.DataFrame, batch_prefix: str) -> dict[str, int]:
    """Write each day's rows beside the other batches' lines of that day's file (the same batch's are replaced)."""
    written = {}
    for (day,), day_rows in landed.sort("day", "line").partition_by("day", as_dict=True, maintain_order=True).items():
        path = IMPORT_ENTITY.path(home / "landing", day)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = _data_lines(path)
        body = day_rows.select(_one_line(column) for column in IMPORT_ENTITY.csv_columns)
        _write_day_file(path, lines.filter(~lines.str.starts_with(batch_prefix)), body.write_csv(include_header=False))
        written[day.isoformat()] = day_rows.height
    return written


def _data_lines(path: Path) -> pl.Series:
    """The data lines of an existing day file, verbatim (empty when there is none)."""
    if not path.exists():
        return pl.Series("raw", [], dtype=pl.String())
    return read_physical_lines(path.read_bytes(), path)["raw"].slice(1).fill_null("")


def _remove_earlier_batches(home: Path, source: str) -> list[str]:
    """Drop every landed line of `source` from every day file; the days whose file changed."""
    changed = []
    for path in sorted((home / "landing" / IMPORT_ENTITY.source / IMPORT_ENTITY.entity).glob("*.csv")):
        lines = _data_lines(path)
        kept = lines.filter(~lines.str.starts_with(f"{source}-"))
        if kept.len() < lines.len():
            _write_day_file(path, kept, "")
            changed.append(path.stem)
    return changed


def _write_day_file(path: Path, kept_lines: pl.Series, new_rows_csv: str) -> None:
    """Header, the kept lines, then the new rows; written beside the file and renamed over it, so the
    landing sensor or a crash never sees half a file."""
    kept = kept_lines.str.join("\n").item() + "\n" if kept_lines.len() else ""
    partial = path.with_name(f".{path.name}.importing")
    partial.write_text(",".join(IMPORT_ENTITY.csv_columns) + "\n" + kept + new_rows_csv, encoding="utf-8")
    os.replace(partial, path)


def _keep_rejected(home: Path, rejected: pl.DataFrame, source: str, batch: str) -> Path | None:
    """The rows rejected at import, with origin and reason; the person id hashed as staging hashes it."""
    path = home / REJECTS_DIR / f"{source}-{batch}.csv"
    if rejected.is_empty():
        path.unlink(missing_ok=True)  # an earlier import of this batch may have rejected rows that now land
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as connection:
        connection.register(
            "rejected", rejected.select("origin", "reason", "person_id", "timestamp", "object_id", "action"))
        kept = connection.sql(
            f"""select origin, reason, {imported_person_hash_sql('person_id')} as person_hash,
                       timestamp, object_id, action
                from rejected""",
            params={"salt": pii_salt()},
        ).pl()
    kept.with_columns(_one_line(column) for column in ("timestamp", "object_id", "action")).write_csv(path)
    return path
