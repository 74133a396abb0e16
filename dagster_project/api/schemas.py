"""Request bodies: posted events in the shape of `fct_events`, validated before anything is computed, and a
persona's human label."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from dagster_project.ingest.importer import SOURCE_NAME_PATTERN

MAX_EVENTS_PER_REQUEST = 1000
TOO_MANY_EVENTS = "too_many_events"


class PostedEvent(BaseModel):
    """One behavioural event of the person named in the URL; `text` is a title, query, post or ticket subject."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    timestamp: datetime = Field(description="ISO 8601 (an offset is converted to UTC, none means UTC) or Unix seconds")
    source: str = Field(pattern=SOURCE_NAME_PATTERN, description="web, social, crm, iot or an imported source name")
    action: str = Field(min_length=1, max_length=64, description="page_view, search, click, like, order, ...")
    object_id: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=2000)
    event_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="the source's record id; posting the same id twice counts the event once",
    )

    @field_validator("timestamp")
    @classmethod
    def naive_utc_not_in_future(cls, value: datetime) -> datetime:
        """Staging's rule: UTC without a zone, and an event from the future is refused."""
        if value.tzinfo is not None:
            try:
                value = value.astimezone(UTC).replace(tzinfo=None)
            except OverflowError:
                raise PydanticCustomError("timestamp_out_of_range", "{timestamp} is out of range in UTC",
                                          {"timestamp": value.isoformat()}) from None
        if value > datetime.now(UTC).replace(tzinfo=None):
            raise PydanticCustomError("future_timestamp", "{timestamp} (UTC) is in the future",
                                      {"timestamp": value.isoformat()})
        return value

    @field_validator("object_id", "category", "text", "event_id", mode="before")
    @classmethod
    def blank_is_missing(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class PostedEvents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[PostedEvent] = Field(min_length=1)

    @field_validator("events", mode="before")
    @classmethod
    def within_request_limit(cls, value: object) -> object:
        """Checked before the events themselves, so an oversized request costs no per-event validation."""
        if isinstance(value, list) and len(value) > MAX_EVENTS_PER_REQUEST:
            raise PydanticCustomError(
                TOO_MANY_EVENTS, "at most {limit} events per request, got {count}",
                {"limit": MAX_EVENTS_PER_REQUEST, "count": len(value)},
            )
        return value


class HumanLabel(BaseModel):
    """A reviewer's label for a persona id, and who gives it (recorded with the time)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=100, description="who sets the label")
