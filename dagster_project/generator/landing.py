"""The landing files of docs/landing_contract.md: the fields of each file, how lines are encoded and written."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

INVALID_UTF8 = b"\xff\xfe"
INVALID_UTF8_MARKER = "\ue000"  # private-use character swapped for INVALID_UTF8 once the line is bytes
WRITE_CHUNK_LINES = 200_000


@dataclass(frozen=True)
class LandingSpec:
    """One landing entity; the first field is the record id, `actor_field` names who acted."""

    source: str
    entity: str
    fmt: str  # "jsonl" or "csv"
    fields: tuple[str, ...]
    actor_field: str
    ts_field: str
    text_field: str  # a free-text field, where bad encodings are planted
    id_prefix: str | None = None  # generated per day as `<prefix>-<yyyymmdd>-<n>`; None: the id names an entity
    action_field: str | None = None
    number_fields: tuple[str, ...] = ()
    amount_field: str | None = None

    @property
    def key(self) -> str:
        return f"{self.source}/{self.entity}"

    @property
    def id_field(self) -> str:
        return self.fields[0]

    def relative_path(self, day: date) -> str:
        return f"landing/{self.source}/{self.entity}/{day.isoformat()}.{self.fmt}"


SPECS: dict[str, LandingSpec] = {
    spec.key: spec
    for spec in (
        LandingSpec(
            "web", "events", "jsonl",
            ("event_id", "ts", "session_id", "cookie_id", "customer_id", "event_type", "url",
             "item_id", "category", "title", "query", "ip", "user_agent"),
            actor_field="cookie_id", ts_field="ts", text_field="user_agent", id_prefix="w", action_field="event_type",
        ),
        LandingSpec(
            "social", "engagements", "jsonl",
            ("engagement_id", "ts", "handle", "action", "post_id", "text", "tags"),
            actor_field="handle", ts_field="ts", text_field="text", id_prefix="s", action_field="action",
        ),
        LandingSpec(
            "crm", "customers", "csv",
            ("customer_id", "email", "phone", "first_name", "last_name", "region", "age_band",
             "social_handle", "updated_at"),
            actor_field="customer_id", ts_field="updated_at", text_field="last_name",
        ),
        LandingSpec(
            "crm", "orders", "csv",
            ("order_id", "customer_id", "ts", "item_id", "category", "title", "quantity", "amount", "currency"),
            actor_field="customer_id", ts_field="ts", text_field="title", id_prefix="o",
            number_fields=("quantity", "amount"), amount_field="amount",
        ),
        LandingSpec(
            "crm", "tickets", "csv",
            ("ticket_id", "customer_id", "ts", "channel", "subject", "body"),
            actor_field="customer_id", ts_field="ts", text_field="body", id_prefix="t",
        ),
        LandingSpec(
            "iot", "devices", "csv",
            ("device_id", "customer_id", "device_type", "registered_at"),
            actor_field="customer_id", ts_field="registered_at", text_field="device_type",
        ),
        LandingSpec(
            "iot", "readings", "csv",
            ("reading_id", "device_id", "ts", "device_type", "signal", "value", "context", "lat", "lon"),
            actor_field="device_id", ts_field="ts", text_field="context", id_prefix="r", number_fields=("value",),
        ),
    )
}


def encode_lines(spec: LandingSpec, frame: pl.DataFrame) -> pl.Series:
    """One line of text per row, without the newline: a JSON object, or RFC 4180 CSV fields."""
    if spec.fmt == "jsonl":
        return frame.select(pl.struct(list(spec.fields)).struct.json_encode()).to_series()
    return frame.select(pl.concat_str([_csv_field(name) for name in spec.fields], separator=",")).to_series()


def csv_header(spec: LandingSpec) -> str | None:
    return ",".join(spec.fields) if spec.fmt == "csv" else None


def _csv_field(name: str) -> pl.Expr:
    """Quote only fields that need it; a missing value is an empty field."""
    value = pl.col(name).fill_null("")
    quoted = pl.concat_str(pl.lit('"'), value.str.replace_all('"', '""', literal=True), pl.lit('"'))
    return pl.when(value.str.contains(r'[",\r\n]')).then(quoted).otherwise(value)


def write_lines(path: Path, header: str | None, lines: pl.Series) -> None:
    """Write newline-terminated lines, turning the invalid-UTF-8 markers into real invalid bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = INVALID_UTF8_MARKER.encode()
    with path.open("wb") as out:
        if header is not None:
            out.write(header.encode() + b"\n")
        for start in range(0, len(lines), WRITE_CHUNK_LINES):
            chunk = lines.slice(start, WRITE_CHUNK_LINES)
            out.write(chunk.str.join("\n").item().encode().replace(marker, INVALID_UTF8))
            out.write(b"\n")
