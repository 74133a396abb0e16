"""Read landing files into raw line tables, one row per physical line.

Every line of every landing file becomes exactly one raw row carrying its file and line
number, so staging can either accept it or reject it with a reason: nothing is lost, and
a reject always points back at `file:line`. Reading is vectorised with Polars; parsing
and validation happen later, in dbt.
"""

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

REPLACEMENT_CHAR = "\ufffd"
LINE_FIELD_SEPARATOR = "\x1f"  # a byte that never occurs in landing text: one field per line


class LandingFileError(ValueError):
    """A landing file that cannot be read at all (as opposed to a bad record inside it)."""


@dataclass(frozen=True)
class LandingEntity:
    source: str
    entity: str
    extension: str
    csv_columns: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"{self.source}__{self.entity}"

    def path(self, landing_dir: Path, day: date) -> Path:
        return landing_dir / self.source / self.entity / f"{day.isoformat()}.{self.extension}"


LANDING_ENTITIES: tuple[LandingEntity, ...] = (
    LandingEntity("web", "events", "jsonl"),
    LandingEntity("social", "engagements", "jsonl"),
    LandingEntity(
        "crm",
        "customers",
        "csv",
        ("customer_id", "email", "phone", "first_name", "last_name", "region", "age_band", "social_handle", "updated_at"),
    ),
    LandingEntity(
        "crm", "orders", "csv", ("order_id", "customer_id", "ts", "item_id", "category", "title", "quantity", "amount", "currency")
    ),
    LandingEntity("crm", "tickets", "csv", ("ticket_id", "customer_id", "ts", "channel", "subject", "body")),
    LandingEntity("iot", "devices", "csv", ("device_id", "customer_id", "device_type", "registered_at")),
    LandingEntity(
        "iot", "readings", "csv", ("reading_id", "device_id", "ts", "device_type", "signal", "value", "context", "lat", "lon")
    ),
    # Logs brought in with `personas import`: one shape for any source (see ingest/importer.py).
    LandingEntity(
        "import",
        "events",
        "csv",
        ("event_id", "person_id", "ts", "action", "object_id", "title", "category", "object_known", "source", "origin"),
    ),
)


def raw_schema(entity: LandingEntity) -> dict[str, pl.DataType]:
    """Column types of an entity's raw table; CSV entities also carry their parsed fields as text."""
    schema: dict[str, pl.DataType] = {
        "event_date": pl.Date(),
        "landing_file": pl.String(),
        "line_no": pl.Int64(),
        "raw": pl.String(),
        "bad_encoding": pl.Boolean(),
    }
    if entity.csv_columns:
        schema["malformed"] = pl.Boolean()
        schema.update({column: pl.String() for column in entity.csv_columns})
    return schema


def _read_lines(data: bytes) -> pl.DataFrame:
    """Physical lines, invalid UTF-8 replaced by U+FFFD so a bad byte costs one line, not the file."""
    if not data:
        return pl.DataFrame({"raw": []}, schema={"raw": pl.String()})
    return pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        separator=LINE_FIELD_SEPARATOR,
        quote_char=None,
        encoding="utf8-lossy",
        new_columns=["raw"],
        infer_schema=False,
        truncate_ragged_lines=True,
    ).select("raw")


def _parse_csv(data: bytes, entity: LandingEntity, path: Path, n_records: int) -> pl.DataFrame:
    """Parse CSV records as text (typing is staging's job) and flag lines with a wrong field count."""
    header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip("\r")
    expected = ",".join(entity.csv_columns)
    if header != expected:
        raise LandingFileError(f"{path}:1: expected the CSV header '{expected}', found '{header}'")
    parsed = pl.read_csv(
        io.BytesIO(data),
        has_header=True,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
    )
    if parsed.height != n_records:
        raise LandingFileError(
            f"{path}: {n_records} data lines but {parsed.height} CSV records; expected one record per line "
            "(an unbalanced quote or an embedded newline)"
        )
    return parsed.select(entity.csv_columns)


def read_landing_file(path: Path, entity: LandingEntity, day: date, home: Path) -> pl.DataFrame:
    """One raw row per line of `path` (the CSV header excluded), typed as `raw_schema(entity)`."""
    data = path.read_bytes()
    lines = _read_lines(data)
    first_line_no = 1
    if entity.csv_columns:
        lines = lines.slice(1)
        first_line_no = 2
    frame = lines.with_columns(
        event_date=pl.lit(day, pl.Date()),
        landing_file=pl.lit(str(path.relative_to(home))),
        line_no=pl.int_range(first_line_no, first_line_no + lines.height, dtype=pl.Int64()),
        bad_encoding=pl.col("raw").fill_null("").str.contains(REPLACEMENT_CHAR, literal=True),
    )
    if entity.csv_columns:
        fields = _parse_csv(data, entity, path, lines.height)
        commas_inside_fields = pl.sum_horizontal(
            pl.col(column).fill_null("").str.count_matches(",", literal=True) for column in entity.csv_columns
        )
        frame = pl.concat([frame, fields], how="horizontal").with_columns(
            malformed=pl.col("raw").is_null()
            | (
                pl.col("raw").str.count_matches(",", literal=True) - commas_inside_fields
                != len(entity.csv_columns) - 1
            )
        )
    return frame.select(list(raw_schema(entity)))


def read_landing_day(landing_dir: Path, entity: LandingEntity, day: date, home: Path) -> pl.DataFrame | None:
    """The raw rows of one entity's file for `day`, or None when the source sent no file that day."""
    path = entity.path(landing_dir, day)
    if not path.exists():
        return None
    return read_landing_file(path, entity, day, home)
