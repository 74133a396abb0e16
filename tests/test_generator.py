"""The sample-data generator: deterministic, true to docs/landing_contract.md, consistent with its planted truth."""

import csv
import json
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from dagster_project.generator import generate
from dagster_project.generator.catalog import HOME_IMPROVER, PERSONAS
from dagster_project.generator.difficulty import clean_lines, measure_difficulty
from dagster_project.generator.population import EMERGING_TAKE_UP
from dagster_project.generator.realistic import (
    GENERIC_CATEGORIES,
    GENERIC_POSTS,
    GENERIC_QUERIES,
    PARENT_PERSONA,
    SHARED_CATEGORIES,
    SHARED_POSTS,
    SHARED_QUERIES,
    SPORTS_FAN,
)

# The landing contract, restated here so the generator is checked against the document, not against itself.
CONTRACT_FIELDS = {
    ("web", "events"): ["event_id", "ts", "session_id", "cookie_id", "customer_id", "event_type", "url",
                        "item_id", "category", "title", "query", "ip", "user_agent"],
    ("social", "engagements"): ["engagement_id", "ts", "handle", "action", "post_id", "text", "tags"],
    ("crm", "customers"): ["customer_id", "email", "phone", "first_name", "last_name", "region", "age_band",
                           "social_handle", "updated_at"],
    ("crm", "orders"): ["order_id", "customer_id", "ts", "item_id", "category", "title", "quantity", "amount",
                        "currency"],
    ("crm", "tickets"): ["ticket_id", "customer_id", "ts", "channel", "subject", "body"],
    ("iot", "devices"): ["device_id", "customer_id", "device_type", "registered_at"],
    ("iot", "readings"): ["reading_id", "device_id", "ts", "device_type", "signal", "value", "context", "lat", "lon"],
}
TS_FIELD = {("crm", "customers"): "updated_at", ("iot", "devices"): "registered_at"}
EXPECTED_REASON = {
    "bad_json": "malformed_record", "wrong_field_count": "malformed_record", "missing_id": "missing_id",
    "unparseable_timestamp": "unparseable_timestamp", "future_timestamp": "future_timestamp",
    "wrong_day_timestamp": "timestamp_outside_partition", "duplicate": "duplicate", "wrong_type": "wrong_type",
    "negative_amount": "negative_amount", "bad_encoding": "bad_encoding", "unknown_action": "unknown_action",
}
ID_TYPE_OF_FIELD = {"cookie_id": "cookie", "customer_id": "customer", "handle": "handle",
                    "social_handle": "handle", "device_id": "device"}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default 14-day run (2,000 people, 6,000 events a day): a second or two."""
    home = tmp_path_factory.mktemp("default")
    return home, generate(home)


@pytest.fixture(scope="module")
def records(default_run):
    return pl.read_parquet(default_run[0] / "truth" / "records.parquet")


@pytest.fixture(scope="module")
def clean(default_run, records):
    return _parse_clean(default_run[0], records)


@pytest.fixture(scope="module")
def easy_clean(tmp_path_factory):
    """The default run in the easy world, parsed like `clean`."""
    home = tmp_path_factory.mktemp("easy")
    generate(home, world="easy")
    return _parse_clean(home, pl.read_parquet(home / "truth" / "records.parquet"))


@pytest.fixture(scope="module")
def small_realistic(tmp_path_factory):
    """A small realistic world over a whole 28-day window: 250 people, 600 events a day."""
    home = tmp_path_factory.mktemp("small_realistic")
    generate(home, days=28, people=250, events_per_day=600, seed=5)
    return home


def _parse_clean(home: Path, records: pl.DataFrame) -> dict:
    """Every clean landing line parsed into its fields, next to its truth row, per (source, entity)."""
    parsed = {}
    for (source, entity), fields in CONTRACT_FIELDS.items():
        rows = []
        truth = records.filter((pl.col("source") == source) & (pl.col("entity") == entity))
        for (landing_file,), file_truth in truth.group_by("landing_file", maintain_order=True):
            lines = (home / landing_file).read_bytes().decode("utf-8", errors="replace").split("\n")
            for row in file_truth.filter(pl.col("broken_kind").is_null()).iter_rows(named=True):
                line = lines[row["line_no"] - 1]
                values = json.loads(line) if landing_file.endswith(".jsonl") else _csv_record(line, fields)
                rows.append({**row, **{f"f_{name}": values[name] for name in fields}})
        frame = pl.DataFrame(rows, infer_schema_length=None)
        ts_field = f"f_{TS_FIELD.get((source, entity), 'ts')}"
        parsed[(source, entity)] = frame.with_columns(
            ts=pl.col(ts_field).str.strptime(pl.Datetime("ms"), "%Y-%m-%dT%H:%M:%S%.3fZ")
        )
    return parsed


def _csv_record(line: str, fields: list[str]) -> dict:
    values = next(csv.reader([line]))
    assert len(values) == len(fields), line
    return {name: value or None for name, value in zip(fields, values, strict=True)}


def _landing_files(home: Path) -> dict[str, bytes]:
    return {str(path.relative_to(home)): path.read_bytes() for path in sorted(home.rglob("*")) if path.is_file()}


def test_catalogue_has_enough_distinct_personas():
    assert len(PERSONAS) >= 12
    catalogue = PERSONAS + (HOME_IMPROVER,)  # the planted new persona is as distinct as the others
    categories = [category.name for persona in catalogue for category in persona.categories]
    assert len(categories) == len(set(categories))
    for persona in catalogue:
        assert re.fullmatch(r"[a-z_]+", persona.key)
        assert 2 <= len(persona.categories) <= 3
        assert all(len(category.items) >= 12 for category in persona.categories)
        assert len(persona.queries) >= 10 and len(persona.posts) >= 10
        assert len(persona.device.contexts) >= 5 and len(persona.ticket_subjects) >= 4
    vocabulary = {
        persona.key: " ".join(
            [title for category in persona.categories for title in category.items]
            + list(persona.queries) + [post.text + " " + " ".join(post.tags) for post in persona.posts]
            + list(persona.device.contexts) + list(persona.ticket_subjects)
        ).lower()
        for persona in catalogue
    }
    for persona in catalogue:
        for term in persona.terms:
            pattern = rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])"
            owners = [key for key, text in vocabulary.items() if re.search(pattern, text)]
            assert owners == [persona.key], f"term {term!r} of {persona.key} occurs in {owners}"


def test_realistic_catalogue_shares_categories_and_texts_between_known_personas():
    keys = {persona.key for persona in PERSONAS + (SPORTS_FAN, HOME_IMPROVER)}
    names = [category.name for persona in PERSONAS + (SPORTS_FAN, HOME_IMPROVER) for category in persona.categories]
    names += [entry.category.name for entry in SHARED_CATEGORIES] + [category.name for category in GENERIC_CATEGORIES]
    assert len(names) == len(set(names))
    for entry in SHARED_CATEGORIES:
        assert 2 <= len(entry.personas) and set(entry.personas) <= keys and len(entry.category.items) >= 12
    assert {key for entry in SHARED_CATEGORIES for key in entry.personas} == keys  # everyone browses shared ones
    for shared in SHARED_POSTS + SHARED_QUERIES:
        assert len(shared.personas) >= 2 and set(shared.personas) <= keys
    assert set(PARENT_PERSONA.values()) <= keys and set(PARENT_PERSONA) <= keys
    assert len(GENERIC_CATEGORIES) == 3 and GENERIC_QUERIES and GENERIC_POSTS


@pytest.mark.parametrize("world", ["realistic", "easy"])
def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path, world):
    small = {"days": 3, "people": 200, "events_per_day": 800, "world": world}
    first = _landing_files(Path(generate(tmp_path / "a", seed=3, **small)["paths"]["home"]))
    second = _landing_files(Path(generate(tmp_path / "b", seed=3, **small)["paths"]["home"]))
    other = _landing_files(Path(generate(tmp_path / "c", seed=4, **small)["paths"]["home"]))
    assert first.keys() == second.keys() == other.keys()
    assert first == second
    landing = [name for name in first if name.startswith("landing/")]
    compared = [name for name in landing if "/customers/" in name or "/events/" in name]
    with_records = [name for name in compared if first[name].count(b"\n") > name.endswith(".csv")]  # not a bare header
    assert all(first[name] != other[name] for name in with_records)
    if world == "easy":  # here no customer delta is empty, so every compared file must differ, as before
        assert with_records == compared


def test_unknown_world_is_refused(tmp_path):
    with pytest.raises(ValueError, match="world must be one of"):
        generate(tmp_path, days=1, people=10, events_per_day=30, world="hard")


def test_impossible_event_volume_is_refused(tmp_path):
    with pytest.raises(ValueError, match="people allow at most"):
        generate(tmp_path, days=1, people=10, events_per_day=10_000)


def test_layout_and_summary(default_run, records):
    home, summary = default_run
    days = [(date(2026, 10, 1) + timedelta(days=index)).isoformat() for index in range(14)]
    for (source, entity), fields in CONTRACT_FIELDS.items():
        ext = "jsonl" if source in ("web", "social") else "csv"
        counts = summary["records"][f"{source}/{entity}"]
        assert sorted(counts) == days
        for day in days:
            path = home / "landing" / source / entity / f"{day}.{ext}"
            assert path.is_file()
            if ext == "csv":
                assert path.read_bytes().split(b"\n", 1)[0].decode() == ",".join(fields)
    assert summary["drift_date"] == "2026-10-10"
    assert summary["total_records"] == records.height
    assert sum(sum(days.values()) for days in summary["records"].values()) == records.height
    assert sum(summary["records"]["web/events"].values()) > 60_000
    manifest = json.loads((home / "truth" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["drift_date"] == "2026-10-10"
    assert manifest["personas"] == [persona.key for persona in PERSONAS + (SPORTS_FAN,)]
    assert manifest["world"] == "realistic"


def test_records_match_landing_files_line_by_line(default_run, records):
    home = default_run[0]
    for (landing_file,), truth in records.group_by("landing_file"):
        lines = (home / landing_file).read_bytes().split(b"\n")
        assert lines[-1] == b"", f"{landing_file} must end with a newline"
        first = 2 if landing_file.endswith(".csv") else 1
        assert truth["line_no"].sort().to_list() == list(range(first, len(lines)))
        assert truth["event_date"].unique().to_list() == [date.fromisoformat(Path(landing_file).stem)]
        for row in truth.filter(pl.col("record_id").is_not_null()).iter_rows(named=True):
            assert row["record_id"].encode() in lines[row["line_no"] - 1], (landing_file, row["line_no"])


def test_clean_records_follow_the_contract(clean):
    web = clean[("web", "events")]
    assert set(web["f_event_type"]) == {"page_view", "search", "click", "add_to_cart"}
    searches = web.filter(pl.col("f_event_type") == "search")
    assert searches["f_query"].null_count() == 0 and searches["f_item_id"].null_count() == searches.height
    browsing = web.filter(pl.col("f_event_type") != "search")
    assert browsing["f_item_id"].null_count() == 0 and browsing["f_query"].null_count() == browsing.height
    slug = browsing["f_url"].str.split("/").list.last()
    assert (browsing["f_url"] == "/c/" + browsing["f_category"] + "/" + slug).all()
    assert set(clean[("social", "engagements")]["f_action"]) == {"like", "share", "comment"}
    orders = clean[("crm", "orders")]
    assert (orders["f_amount"].cast(pl.Float64) > 0).all() and set(orders["f_currency"]) == {"EUR"}
    assert set(orders["f_quantity"].cast(pl.Int64)) <= {1, 2, 3}
    tickets = clean[("crm", "tickets")]
    assert not tickets["f_body"].str.contains("@").any()
    for frame in clean.values():
        ts_column = next(column for column in ("f_ts", "f_updated_at", "f_registered_at") if column in frame.columns)
        assert frame[ts_column].str.contains(TIMESTAMP.pattern).all()
        assert (frame["ts"].dt.date() == frame["event_date"]).all()


def test_every_landing_identifier_belongs_to_exactly_one_person(default_run, clean):
    identifiers = pl.read_parquet(default_run[0] / "truth" / "identifiers.parquet")
    assert identifiers.select("id_type", "id_value").is_unique().all()
    assert identifiers["id_value"].is_unique().all()
    id_keys = zip(identifiers["id_type"], identifiers["id_value"], strict=True)
    owner = dict(zip(id_keys, identifiers["person_key"], strict=True))
    checked = 0
    for frame in clean.values():
        for field, id_type in ID_TYPE_OF_FIELD.items():
            if f"f_{field}" not in frame.columns:
                continue
            for value, person_key in frame.select(f"f_{field}", "person_key").drop_nulls().iter_rows():
                assert owner[(id_type, value)] == person_key, (field, value)
                checked += 1
    assert checked > 50_000
    people = pl.read_parquet(default_run[0] / "truth" / "people.parquet")
    per_person = identifiers.group_by("person_key").agg(pl.col("id_type"))
    anonymous = people.filter(pl.col("customer_id").is_null())["person_key"]
    assert people.height == 2000 and anonymous.len() == 200
    for types in per_person.filter(pl.col("person_key").is_in(anonymous.implode()))["id_type"]:
        assert types.to_list() == ["cookie"]


def test_customer_cookies_log_in_on_their_first_session(default_run, clean):
    web = clean[("web", "events")].sort("ts")
    people = pl.read_parquet(default_run[0] / "truth" / "people.parquet")
    sessions = web.group_by("f_session_id").agg(
        pl.col("ts").min(), pl.col("f_cookie_id").first(), pl.col("person_key").first(),
        pl.col("f_customer_id").n_unique().alias("customer_ids"), pl.col("f_customer_id").drop_nulls().first(),
    )
    assert (sessions["customer_ids"] == 1).all(), "a session is logged in for all of its events or none"
    customer_sessions = sessions.join(people.select("person_key", "customer_id"), on="person_key").filter(
        pl.col("customer_id").is_not_null()
    ).sort("ts").with_columns(first=pl.col("ts").rank("ordinal").over("f_cookie_id") == 1)
    assert (customer_sessions.filter(pl.col("f_customer_id").is_not_null())["f_customer_id"]
            == customer_sessions.filter(pl.col("f_customer_id").is_not_null())["customer_id"]).all()
    first, later = customer_sessions.filter("first"), customer_sessions.filter(~pl.col("first"))
    assert first["f_customer_id"].is_not_null().mean() > 0.99
    assert 0.2 < later["f_customer_id"].is_not_null().mean() < 0.4


def test_social_and_iot_only_from_people_who_can_produce_them(default_run, clean):
    identifiers = pl.read_parquet(default_run[0] / "truth" / "identifiers.parquet")
    devices = clean[("iot", "devices")]
    readings = clean[("iot", "readings")]
    registered = devices.group_by("f_device_id").agg(pl.col("ts").min().alias("registered"))
    first_reading = readings.group_by("f_device_id").agg(pl.col("ts").min().alias("first_reading"))
    both = first_reading.join(registered, on="f_device_id").join(
        _broken_reading_days(default_run[0]), on="f_device_id", how="left"
    ).filter(  # a device whose first reading landed on a broken line was registered the day before that one
        pl.col("first_broken").is_null() | (pl.col("first_broken") >= pl.col("first_reading").dt.date())
    )
    assert both.height >= 0.95 * first_reading.height  # the rest were registered or first read on a broken line
    assert (both["registered"] <= both["first_reading"]).all()
    expected_day = pl.max_horizontal(both["first_reading"].dt.date() - timedelta(days=1), pl.lit(date(2026, 10, 1)))
    assert (both.select(expected_day).to_series() == both["registered"].dt.date()).all()
    assert set(readings["f_device_id"]) <= set(identifiers.filter(pl.col("id_type") == "device")["id_value"])
    assert set(clean[("social", "engagements")]["f_handle"]) <= set(
        identifiers.filter(pl.col("id_type") == "handle")["id_value"]
    )


def _broken_reading_days(home: Path) -> pl.DataFrame:
    """Per device, the first day one of its readings is on a broken line (the id is read off the raw line)."""
    broken = pl.read_parquet(home / "truth" / "records.parquet").filter(
        (pl.col("entity") == "readings") & pl.col("broken_kind").is_not_null()
    )
    rows = []
    for row in broken.iter_rows(named=True):
        line = (home / row["landing_file"]).read_bytes().split(b"\n")[row["line_no"] - 1]
        if match := re.search(rb"d-[0-9a-f]{10}", line):
            rows.append({"f_device_id": match.group().decode(), "first_broken": row["event_date"]})
    return pl.DataFrame(rows, schema={"f_device_id": pl.String, "first_broken": pl.Date}).group_by(
        "f_device_id"
    ).agg(pl.col("first_broken").min())


def test_orders_follow_an_add_to_cart_of_the_same_memory(clean):
    carts = clean[("web", "events")].filter(pl.col("f_event_type") == "add_to_cart")
    orders = clean[("crm", "orders")]
    matched = orders.join(
        carts.select("memory_key", "f_item_id", pl.col("ts").alias("cart_ts")), on=["memory_key", "f_item_id"]
    ).filter((pl.col("ts") - pl.col("cart_ts")).is_between(timedelta(minutes=1), timedelta(minutes=3)))
    assert matched["memory_key"].n_unique() >= 0.95 * orders["memory_key"].n_unique()


def test_easy_world_sessions_of_one_person_are_at_least_an_hour_apart(easy_clean):
    memories = (
        pl.concat([frame.select("person_key", "memory_key", "persona", "ts") for frame in easy_clean.values()])
        .filter(pl.col("memory_key").is_not_null())
        .group_by("memory_key")
        .agg(pl.col("person_key").n_unique().alias("people"), pl.col("persona").n_unique().alias("personas"),
             pl.col("person_key").first(), pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end"))
    )
    assert (memories["people"] == 1).all() and (memories["personas"] == 1).all()
    gaps = memories.sort("person_key", "start").with_columns(
        gap=pl.col("start") - pl.col("end").shift().over("person_key")
    )["gap"].drop_nulls()
    assert gaps.len() > 5_000
    assert gaps.min() >= HOUR
    assert (memories["end"] - memories["start"]).max() <= HOUR


def test_persona_weights_sum_to_one_per_person_and_day(default_run):
    weights = pl.read_parquet(default_run[0] / "truth" / "persona_weights.parquet")
    days = pl.DataFrame({"day": pl.date_range(date(2026, 10, 1), date(2026, 10, 14), eager=True)})
    per_day = (
        weights.join(days, how="cross")
        .filter(
            (pl.col("day") >= pl.col("valid_from"))
            & (pl.col("valid_to").is_null() | (pl.col("day") <= pl.col("valid_to")))
        )
        .group_by("person_key", "day")
        .agg(pl.col("weight").sum(), pl.len().alias("personas"))
    )
    assert per_day.height == 2000 * 14
    assert ((per_day["weight"] - 1.0).abs() < 1e-9).all()
    initial = weights.filter(pl.col("valid_from") == date(2026, 10, 1))
    assert initial["weight"].min() >= 0.1 - 1e-12
    assert set(initial.group_by("person_key").len()["len"]) == {1, 2, 3}


def test_drift_changes_the_weights_of_the_drift_share(default_run, records):
    weights = pl.read_parquet(default_run[0] / "truth" / "persona_weights.parquet")
    drift_date = date(2026, 10, 10)

    def as_of(day):
        valid = (pl.col("valid_from") <= day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= day))
        return weights.filter(valid).select("person_key", "persona", "weight")

    before, after = as_of(drift_date - timedelta(days=1)), as_of(drift_date)
    changed = before.join(after, on=["person_key", "persona", "weight"], how="full").filter(
        pl.col("person_key").is_null() | pl.col("person_key_right").is_null()
    )
    movers = set(changed["person_key"].drop_nulls()) | set(changed["person_key_right"].drop_nulls())
    assert len(movers) == round(0.2 * 2000)
    taken_up = after.join(before, on=["person_key", "persona"], how="anti")
    assert taken_up.height == len(movers) and (taken_up["weight"] == 0.5).all()
    new_persona_events = records.join(taken_up.select("person_key", "persona"), on=["person_key", "persona"])
    assert new_persona_events["event_date"].min() >= drift_date
    assert new_persona_events.height > 1_000


def test_every_broken_kind_present_with_its_reason(default_run, records):
    broken = records.filter(pl.col("broken_kind").is_not_null())
    assert set(broken["broken_kind"]) == set(EXPECTED_REASON)
    for kind, reason in broken.select("broken_kind", "expected_reason").unique().iter_rows():
        assert EXPECTED_REASON[kind] == reason
    assert records.filter(pl.col("broken_kind").is_null())["expected_reason"].null_count() == records.filter(
        pl.col("broken_kind").is_null()
    ).height
    assert broken.filter(pl.col("broken_kind") == "negative_amount")["entity"].unique().to_list() == ["orders"]
    assert set(broken.filter(pl.col("broken_kind") == "wrong_type")["entity"]) <= {"orders", "readings"}
    assert set(broken.filter(pl.col("broken_kind") == "bad_json")["source"]) == {"web", "social"}
    assert set(broken.filter(pl.col("broken_kind") == "wrong_field_count")["source"]) <= {"crm", "iot"}


def test_broken_lines_break_in_exactly_one_way(default_run, records):
    home = default_run[0]
    files = {}
    for row in records.iter_rows(named=True):
        if row["landing_file"] not in files:
            files[row["landing_file"]] = (home / row["landing_file"]).read_bytes().split(b"\n")
        raw = files[row["landing_file"]][row["line_no"] - 1]
        kind = row["broken_kind"]
        if kind == "bad_encoding":
            assert b"\xff\xfe" in raw
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
            continue
        line = raw.decode("utf-8")
        source, entity = row["source"], row["entity"]
        fields = CONTRACT_FIELDS[(source, entity)]
        if source in ("web", "social"):
            if kind == "bad_json":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(line)
                continue
            values = json.loads(line)
        else:
            values = next(csv.reader([line]))
            if kind == "wrong_field_count":
                assert len(values) != len(fields)
                continue
            assert len(values) == len(fields)
            values = dict(zip(fields, values, strict=True))
        ts = values.get(TS_FIELD.get((source, entity), "ts"))
        if kind == "unparseable_timestamp":
            assert not TIMESTAMP.match(ts)
        elif kind == "future_timestamp":
            assert ts.startswith("2099-")
        elif kind == "wrong_day_timestamp":
            assert TIMESTAMP.match(ts) and ts[:10] != row["event_date"].isoformat()
        elif kind in (None, "duplicate", "missing_id"):
            assert TIMESTAMP.match(ts) and ts[:10] == row["event_date"].isoformat()
        if kind == "missing_id":
            actor = {"events": "cookie_id", "engagements": "handle", "readings": "device_id"}.get(entity, "customer_id")
            assert not values.get(fields[0]) or not values.get(actor)


def test_broken_share_is_about_one_percent(records):
    share = records["broken_kind"].is_not_null().mean()
    assert 0.008 < share < 0.012
    duplicates = records.filter(pl.col("broken_kind") == "duplicate")
    assert duplicates["record_id"].is_in(
        records.filter(pl.col("broken_kind").is_null())["record_id"].implode()
    ).all()


def test_customer_file_is_a_full_snapshot_then_small_deltas(default_run, records):
    customers = records.filter(pl.col("entity") == "customers").group_by("event_date").len().sort("event_date")
    assert customers["len"][0] >= 1800
    assert customers["len"][1:].max() < 0.02 * 1800


def test_realistic_world_plants_noise_switches_short_gaps_and_light_users(small_realistic):
    shares = measure_difficulty(small_realistic)
    assert shares["generic_view_share"] >= 0.10 and shares["generic_view_share_median_person"] >= 0.10
    assert 0.10 <= shares["off_persona_event_share"] <= 0.20
    assert shares["switching_session_share"] >= 0.15
    assert 0.05 <= shares["short_gap_share"] < 0.5
    assert shares["light_user_share"] >= 0.30
    assert -1.3 <= shares["zipf_slope"] <= -0.7


def test_realistic_world_is_harder_than_the_easy_one(small_realistic, tmp_path):
    generate(tmp_path, days=28, people=250, events_per_day=600, seed=5, world="easy")
    realistic, easy = measure_difficulty(small_realistic), measure_difficulty(tmp_path)
    assert easy["shared_category_share"] == 0.0 and realistic["shared_category_share"] >= 0.25
    assert realistic["shared_category_view_share"] >= 0.3
    assert easy["ambiguous_post_share"] == 0.0 and realistic["ambiguous_post_share"] >= 0.1
    assert realistic["single_persona_word_share"] <= easy["single_persona_word_share"] - 0.1
    assert easy["mixed_session_share"] == 0.0 and realistic["mixed_session_share"] >= 0.5
    assert easy["mean_memory_purity"] == 1.0 and 0.6 <= realistic["mean_memory_purity"] <= 0.9


def test_every_event_has_its_planted_intent_and_noise_has_no_persona(small_realistic):
    records = pl.read_parquet(small_realistic / "truth" / "records.parquet")
    events = records.filter(pl.col("memory_key").is_not_null())
    assert events["intent"].null_count() == 0
    assert (events["persona"].is_null() == events["noise"].is_not_null()).all()
    assert (events.filter(pl.col("persona").is_not_null())["persona"] == events.filter(
        pl.col("persona").is_not_null())["intent"]).all()
    assert set(events["noise"].drop_nulls()) == {"generic", "off_persona"}
    assert events.filter(pl.col("source") == "iot")["noise"].is_null().all()  # readings come from the persona's device
    per_memory = events.group_by("memory_key").agg(
        intents=pl.col("intent").n_unique(),
        majority=pl.col("persona").drop_nulls().mode().first(),
        intent=pl.col("intent").first(),
    )
    assert (per_memory["intents"] == 1).all()  # one memory, one planted intent: its truth is its majority persona
    with_persona = per_memory.filter(pl.col("majority").is_not_null())
    assert (with_persona["majority"] == with_persona["intent"]).all() and with_persona.height >= 0.9 * per_memory.height
    held = pl.read_parquet(small_realistic / "truth" / "persona_weights.parquet").select("person_key", "persona")
    shown = events.filter(pl.col("persona").is_not_null()).select("person_key", "persona").unique()
    assert shown.join(held, on=["person_key", "persona"], how="anti").height == 0  # nobody shows a persona not held


def test_sessions_of_one_person_never_overlap_and_some_follow_within_30_minutes(small_realistic):
    records = pl.read_parquet(small_realistic / "truth" / "records.parquet").filter(pl.col("broken_kind").is_null())
    sessions = clean_lines(small_realistic, "web/events", records).group_by("session_id").agg(
        pl.col("person_key").first(), start=pl.col("ts").min(), end=pl.col("ts").max()
    )
    gaps = sessions.sort("person_key", "start").select(
        gap=pl.col("start") - pl.col("end").shift().over("person_key")
    )["gap"].drop_nulls()
    assert gaps.min() > timedelta(0)
    assert (gaps < timedelta(minutes=30)).sum() >= 0.05 * gaps.len()


def test_intent_switches_happen_within_one_session_without_a_pause(small_realistic):
    records = pl.read_parquet(small_realistic / "truth" / "records.parquet").filter(pl.col("broken_kind").is_null())
    web = clean_lines(small_realistic, "web/events", records)
    social = clean_lines(small_realistic, "social/engagements", records)
    switching = web.group_by("session_id").agg(pl.col("memory_key").unique()).filter(
        pl.col("memory_key").list.len() == 2
    )
    assert switching.height > 100
    memories = pl.concat([frame.select("memory_key", "ts", "intent") for frame in (web, social)]).group_by(
        "memory_key"
    ).agg(pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end"), pl.col("intent").first())
    pairs = switching.select(
        first=pl.col("memory_key").list.min(), second=pl.col("memory_key").list.max()
    ).join(memories, left_on="first", right_on="memory_key").join(
        memories, left_on="second", right_on="memory_key", suffix="_second"
    ).with_columns(  # memory keys number first parts before second parts, so `first` may be either
        gap=pl.max_horizontal(pl.col("start_second") - pl.col("end"), pl.col("start") - pl.col("end_second"))
    )
    assert (pairs["intent"] != pairs["intent_second"]).all()
    assert (pairs["gap"] > timedelta(0)).all() and (pairs["gap"] < timedelta(minutes=30)).all()


def test_nested_personas_are_planted_and_share_the_broad_persona_categories(small_realistic):
    personas = pl.read_parquet(small_realistic / "truth" / "personas.parquet")
    parent = dict(zip(personas["persona"], personas["parent"], strict=True))
    assert {child: value for child, value in parent.items() if value} == PARENT_PERSONA == {
        "tennis_fan": "sports_fan", "runner": "sports_fan"}
    categories = dict(zip(personas["persona"], personas["categories"].to_list(), strict=True))
    for child, broad in PARENT_PERSONA.items():
        assert len(set(categories[child]) & set(categories[broad])) >= 2
    shared = [name for name in categories["sports_fan"] if sum(name in own for own in categories.values()) > 1]
    records = pl.read_parquet(small_realistic / "truth" / "records.parquet").filter(pl.col("broken_kind").is_null())
    views = clean_lines(small_realistic, "web/events", records).filter(pl.col("category").is_in(shared))
    assert {"sports_fan", "tennis_fan", "runner"} <= set(views["persona"].drop_nulls())


def test_new_persona_at_drift_is_held_by_nobody_before_and_taken_up_on_the_drift_day(tmp_path):
    small = {"days": 4, "people": 400, "events_per_day": 1600, "seed": 3, "drift_day": 2}
    off, on = tmp_path / "off", tmp_path / "on"
    generate(off, **small)
    drift_date = date.fromisoformat(generate(on, new_persona_at_drift=True, **small)["drift_date"])
    manifest = json.loads((on / "truth" / "manifest.json").read_text())
    assert manifest["parameters"]["new_persona_at_drift"] is True
    assert manifest["personas"][-1] == "home_improver" and manifest["new_persona"]["born"] == drift_date.isoformat()
    assert json.loads((off / "truth" / "manifest.json").read_text())["new_persona"] is None
    personas = pl.read_parquet(on / "truth" / "personas.parquet")
    assert dict(zip(personas["persona"], personas["born"], strict=True)) == {
        **{key: date(2026, 10, 1) for key in manifest["personas"][:-1]}, "home_improver": drift_date}

    weights = pl.read_parquet(on / "truth" / "persona_weights.parquet").filter(pl.col("persona") == "home_improver")
    assert (weights["valid_from"] == drift_date).all() and weights["valid_to"].is_null().all()
    assert weights.height == manifest["new_persona"]["people"] == round(EMERGING_TAKE_UP * manifest["drifted_people"])
    records = pl.read_parquet(on / "truth" / "records.parquet")
    assert records.filter(pl.col("intent") == "home_improver")["event_date"].min() == drift_date
    # Nobody sees its items before the drift day, not even as another persona's noise; from then on they do.
    own = [category.name for category in HOME_IMPROVER.categories]
    views = clean_lines(on, "web/events", records.filter(pl.col("broken_kind").is_null()))
    shown = views.filter(pl.col("category").is_in(own))
    assert shown["event_date"].min() == drift_date and shown.filter(pl.col("persona").is_null()).height > 0

    # Before the drift day every landing file is the one of the world without it, but device registrations:
    # a device is registered the day before its first reading, which may come after the drift.
    before, with_it = _landing_files(off), _landing_files(on)
    changed = {name for name in before if name.startswith("landing/") and before[name] != with_it.get(name)}
    assert changed and all(name >= f"{drift_date}" for name in (Path(name).stem for name in changed
                                                               if "/iot/devices/" not in name))


def test_new_persona_at_drift_needs_a_drift_day(tmp_path):
    with pytest.raises(ValueError, match="needs a drift day"):
        generate(tmp_path, days=1, people=50, events_per_day=100, new_persona_at_drift=True)
