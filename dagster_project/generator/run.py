"""Orchestrates a whole generation run: days of simulation, landing files with broken records, the truth."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from dagster_project.paths import record_first_data_day

from .broken import KindRotation, break_fields, break_lines, plan_broken
from .formats import MS_PER_DAY
from .landing import SPECS, LandingSpec, csv_header, encode_lines, write_lines
from .population import LIGHT_SHARE, Population, build_population, with_light_users
from .randomness import stream
from .simulate import MAX_SESSIONS_PER_PERSON, CustomerBook, Day, device_registrations, session_count, simulate_day
from .truth import identifiers_frame, people_frame, persona_weights_frame, personas_frame, records_frame, write_truth
from .world import WORLDS, World, build_world


def generate(
    home: Path,
    days: int = 14,
    people: int = 2000,
    events_per_day: int = 6000,
    seed: int = 7,
    start_date: date = date(2026, 10, 1),
    drift_day: int | None = None,
    drift_share: float = 0.2,
    broken_share: float = 0.01,
    underrepresent: tuple[str, str] | None = None,
    world: str = "realistic",
    new_persona_at_drift: bool = False,
) -> dict:
    """Write `days` days of landing files and the planted truth under `home`; return a summary.

    The same arguments always give byte-identical files. On `drift_day` (0-based, in
    [1, days - 1]; default `days * 2 // 3`, no drift in a one-day run) a `drift_share` of
    people take up a new persona. `underrepresent=(region, persona key)`, e.g. ("north",
    "runner"), leaves that persona without people of that region, to test the fairness audit.
    `world="realistic"` (shared categories, generic items, noise, intent switches, nested personas,
    light users; see realistic.py and simulate.py) or `"easy"` (every category and word names its
    persona, one intent per session, sessions hours apart: a fast test fixture).
    `new_persona_at_drift` plants a persona nobody holds before the drift day (catalog.HOME_IMPROVER),
    taken up on it by part of the drifting people (population.EMERGING_TAKE_UP). Off, the default,
    the landing files are byte-identical to a run without the option; on, so is every landing file
    before the drift day but the device registrations (dated from a device's first reading, which
    may come after the drift).
    """
    kind = world
    drift_day = _check_arguments(days, people, events_per_day, drift_day, drift_share, broken_share, kind)
    if new_persona_at_drift and drift_day is None:
        raise ValueError("new_persona_at_drift needs a drift day: generate at least 2 days")
    home = Path(home)
    world = build_world(seed, kind, new_persona_at_drift)
    population = build_population(
        stream(seed, "population"), stream(seed, "drift"), world, people, drift_share, underrepresent
    )
    if kind == "realistic":
        population = with_light_users(stream(seed, "light"), population, days)
    calendar = [
        Day(index, start_date + timedelta(days=index), _epoch_ms(start_date) + index * MS_PER_DAY)
        for index in range(days)
    ]
    drift_date = calendar[drift_day].date if drift_day is not None else None
    writer = _LandingWriter(home, seed, broken_share)
    customers = _simulate_and_write(writer, seed, world, population, calendar, events_per_day, drift_day)
    record_first_data_day(home, start_date)  # the home's partitions start here (or earlier, if it holds older data)

    manifest = {
        "parameters": {
            "days": days, "people": people, "events_per_day": events_per_day, "seed": seed,
            "start_date": start_date.isoformat(), "drift_day": drift_day, "drift_share": drift_share,
            "broken_share": broken_share, "underrepresent": list(underrepresent) if underrepresent else None,
            "world": kind, "new_persona_at_drift": new_persona_at_drift,
        },
        "world": kind,
        "seed": seed,
        "start_date": start_date.isoformat(),
        "end_date": calendar[-1].date.isoformat(),
        "drift_date": drift_date.isoformat() if drift_date else None,
        "drifted_people": int(population.drifted.sum()) if drift_date else 0,
        "new_persona": _new_persona(world, population, drift_date),
        "personas": world.persona_keys,
        "notes": "persona_weights.valid_to is the last day a weight holds (inclusive); null = still open.",
    }
    records = records_frame(writer.truth_parts, population, world)
    truth_paths = write_truth(
        home / "truth",
        manifest,
        {
            "personas": personas_frame(world, start_date, drift_date),
            "people": people_frame(population, customers),
            "identifiers": identifiers_frame(population),
            "persona_weights": persona_weights_frame(population, world, start_date, drift_date),
            "records": records,
        },
    )
    broken = Counter(records["broken_kind"].drop_nulls().to_list())
    return {
        "records": writer.line_counts,
        "broken": dict(sorted(broken.items())),
        "total_records": records.height,
        "broken_records": int(sum(broken.values())),
        "start_date": manifest["start_date"],
        "end_date": manifest["end_date"],
        "drift_date": manifest["drift_date"],
        "paths": {
            "home": str(home),
            "landing": str(home / "landing"),
            "truth": str(home / "truth"),
            "landing_files": writer.paths,
            **truth_paths,
        },
    }


def _new_persona(world: World, population: Population, drift_date: date | None) -> dict | None:
    """The planted new persona of the manifest: its key, label, birth day and how many people take it up."""
    if world.emerging is None:
        return None
    persona = world.personas[world.emerging]
    return {"persona": persona.key, "label": persona.label, "born": drift_date.isoformat(),
            "people": int((population.drifted & (population.new_persona == world.emerging)).sum())}


def _simulate_and_write(
    writer: "_LandingWriter",
    seed: int,
    world: World,
    population: Population,
    calendar: list[Day],
    events_per_day: int,
    drift_day: int | None,
) -> CustomerBook:
    """Simulate and write day by day; devices are registered last, once their first readings are known."""
    cookie_seen = np.zeros(len(population.cookies.ids), dtype=bool)
    first_reading_ms = np.full(population.devices.height, -1, dtype=np.int64)
    customers = CustomerBook(population)
    for day in calendar:
        drifted = drift_day is not None and day.index >= drift_day
        weights = population.weights_after if drifted else population.weights_before
        present = len(world.personas) if drifted else world.established
        frames = simulate_day(
            stream(seed, "day", day.index), world, population, day, events_per_day, weights, cookie_seen, customers,
            present,
        )
        _note_first_readings(first_reading_ms, population.devices, frames["iot/readings"])
        for key, frame in frames.items():
            writer.write(SPECS[key], day, frame)
    registrations = device_registrations(stream(seed, "devices"), population, calendar, first_reading_ms)
    for day, frame in zip(calendar, registrations, strict=True):
        writer.write(SPECS["iot/devices"], day, frame)
    return customers


def _check_arguments(
    days: int, people: int, events_per_day: int, drift_day: int | None, drift_share: float, broken_share: float,
    world: str,
) -> int | None:
    """Validate the arguments and return the drift day to use (None: no drift within the run)."""
    if days < 1 or people < 1:
        raise ValueError(f"days and people must be at least 1, got days={days}, people={people}")
    if not 0.0 <= drift_share <= 1.0 or not 0.0 <= broken_share < 1.0:
        raise ValueError(f"drift_share must be in [0, 1] and broken_share in [0, 1), got {drift_share}, {broken_share}")
    if world not in WORLDS:
        raise ValueError(f"world must be one of {WORLDS}, got {world!r}")
    regular = people - round(LIGHT_SHARE * people) if world == "realistic" else people
    sessions, capacity = session_count(events_per_day), MAX_SESSIONS_PER_PERSON * regular
    if sessions > capacity:
        raise ValueError(
            f"events_per_day={events_per_day} needs {sessions} sessions a day, but {regular} regular people allow at "
            f"most {capacity} ({MAX_SESSIONS_PER_PERSON} each, one per 3-hour slot); "
            "raise people or lower events_per_day"
        )
    if drift_day is None:
        return days * 2 // 3 if days > 1 else None
    if not 1 <= drift_day < days:
        raise ValueError(f"drift_day must be a day index in [1, {days - 1}], got {drift_day}")
    return drift_day


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _note_first_readings(first_reading_ms: np.ndarray, devices: pl.DataFrame, readings: pl.DataFrame) -> None:
    """Remember when each device was first read, to register it the day before."""
    firsts = (
        devices.select("device_id").with_row_index("device")
        .join(readings.group_by("device_id").agg(pl.col("_ts_ms").min()), on="device_id")
    )
    device, first_ms = firsts["device"].to_numpy(), firsts["_ts_ms"].to_numpy()
    unseen = first_reading_ms[device] < 0
    first_reading_ms[device[unseen]] = first_ms[unseen]


class _LandingWriter:
    """Writes one landing file per entity and day, planting broken records, and keeps their truth rows."""

    def __init__(self, home: Path, seed: int, broken_share: float) -> None:
        self.home, self.seed, self.broken_share = home, seed, broken_share
        self.rotations = {key: KindRotation(spec) for key, spec in SPECS.items()}
        self.truth_parts: list[pl.DataFrame] = []
        self.line_counts: dict[str, dict[str, int]] = {key: {} for key in SPECS}
        self.paths: list[str] = []

    def write(self, spec: LandingSpec, day: Day, frame: pl.DataFrame) -> None:
        rng = stream(self.seed, "broken", spec.key, day.index)
        plan = plan_broken(rng, self.rotations[spec.key], frame.height, self.broken_share)
        damaged, missing_record_id = break_fields(rng, spec, frame, plan)
        lines = break_lines(encode_lines(spec, damaged), plan)
        truth = pl.DataFrame(
            {
                "record_id": frame[spec.id_field].clone().scatter(missing_record_id, None),
                "_person": frame["_person"],
                "_persona": frame["_persona"],
                "memory_key": frame["_memory"],
                "_noise": frame["_noise"],
                "broken_kind": plan.kind_of_rows(frame.height),
            }
        )
        copies = truth[plan.duplicate_of].with_columns(broken_kind=pl.lit("duplicate"))
        position = np.concatenate((np.arange(frame.height), plan.insert_before))
        is_original = np.concatenate((np.ones(frame.height), np.zeros(len(plan.duplicate_of))))
        order = np.lexsort((is_original, position))  # a copy lands just before the row it was inserted before
        lines = pl.concat([lines, lines.gather(plan.duplicate_of)]).gather(order)
        relative_path = spec.relative_path(day.date)
        first_line = 2 if spec.fmt == "csv" else 1
        self.truth_parts.append(
            pl.concat([truth, copies])[order].with_columns(
                source=pl.lit(spec.source),
                entity=pl.lit(spec.entity),
                landing_file=pl.lit(relative_path),
                line_no=pl.int_range(first_line, first_line + len(order), dtype=pl.Int64),
                event_date=pl.lit(day.date),
            )
        )
        write_lines(self.home / relative_path, csv_header(spec), lines)
        self.line_counts[spec.key][day.date.isoformat()] = len(lines)
        self.paths.append(relative_path)
