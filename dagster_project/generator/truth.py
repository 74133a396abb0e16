"""The planted truth under `home/truth/`: who is who, who holds which persona when, what each landing line is.

The pipeline never reads these files; evaluation and tests compare the pipeline's output to them.
"""

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from .broken import EXPECTED_REASON
from .population import DRIFT_WEIGHT, Population
from .simulate import NOISE_KINDS, CustomerBook
from .world import World


def personas_frame(world: World, start: date, drift_date: date | None) -> pl.DataFrame:
    """The planted personas; `categories` lists every category a persona browses, shared ones included,
    `parent` names the broad persona a narrower one is nested under (null at the top) and `born`
    the first day anyone holds it: the start, or the drift day for the planted new persona."""
    born = [start if index < world.established else drift_date for index in range(len(world.personas))]
    return pl.DataFrame(
        {
            "persona": world.persona_keys,
            "label": [persona.label for persona in world.personas],
            "categories": [list(categories) for categories in world.categories],
            "terms": [list(persona.terms) for persona in world.personas],
            "parent": pl.Series(world.parents, dtype=pl.String),
            "born": pl.Series(born, dtype=pl.Date),
        }
    )


def people_frame(population: Population, customers: CustomerBook) -> pl.DataFrame:
    """People as they are at the end of the run: CRM phone and region changes applied."""
    ips = (
        pl.DataFrame({"owner": population.ips.owner, "ip": population.ips.ids})
        .group_by("owner", maintain_order=True)
        .agg(ips="ip")
    )
    final_rows = customers.rows["_person"].to_numpy()
    phone = population.people["phone"].clone().scatter(final_rows, customers.rows["phone"])
    region = population.people["region"].clone().scatter(final_rows, customers.rows["region"])
    return population.people.with_columns(phone=phone, region=region, ips=ips["ips"]).select(
        "person_key", "customer_id", "email", "phone", "first_name", "last_name",
        "region", "age_band", "handle", "ips", "user_agent",
    )


def identifiers_frame(population: Population) -> pl.DataFrame:
    """Every identifier exactly as it appears in landing files, with its owner."""
    people, person_key = population.people, population.people["person_key"]
    parts = [
        pl.DataFrame({"person_key": person_key.gather(population.cookies.owner), "id_type": "cookie",
                      "id_value": population.cookies.ids}),
        people.filter(pl.col("customer_id").is_not_null()).select(
            "person_key", id_type=pl.lit("customer"), id_value="customer_id"
        ),
        people.filter(pl.col("handle").is_not_null()).select("person_key", id_type=pl.lit("handle"), id_value="handle"),
        pl.DataFrame({"person_key": person_key.gather(population.devices["person"]), "id_type": "device",
                      "id_value": population.devices["device_id"]}),
    ]
    return pl.concat(parts)


def persona_weights_frame(population: Population, world: World, start: date, drift_date: date | None) -> pl.DataFrame:
    """Weights with validity ranges; `valid_to` is the last day a weight holds (inclusive), null while open."""
    rows, slots = np.nonzero(population.slot_persona >= 0)
    drifted = population.drifted if drift_date is not None else np.zeros(population.size, dtype=bool)
    person_key, persona_key = population.people["person_key"], pl.Series(world.persona_keys)
    before_drift = drifted[rows]
    last_day_before_drift = drift_date - timedelta(days=1) if drift_date else None
    held = pl.DataFrame(
        {
            "person_key": person_key.gather(rows),
            "persona": persona_key.gather(population.slot_persona[rows, slots]),
            "weight": population.slot_weight[rows, slots],
            "valid_from": start,
        }
    ).with_columns(valid_to=pl.when(pl.lit(before_drift)).then(pl.lit(last_day_before_drift, pl.Date)))
    if drift_date is None:
        return held
    kept = held.filter(pl.Series(before_drift)).with_columns(
        weight=pl.col("weight") * (1.0 - DRIFT_WEIGHT), valid_from=pl.lit(drift_date), valid_to=pl.lit(None, pl.Date)
    )
    movers = np.flatnonzero(drifted)
    taken_up = pl.DataFrame(
        {
            "person_key": person_key.gather(movers),
            "persona": persona_key.gather(population.new_persona[movers]),
            "weight": np.full(len(movers), DRIFT_WEIGHT),
            "valid_from": drift_date,
            "valid_to": pl.Series([None] * len(movers), dtype=pl.Date),
        }
    )
    return pl.concat([held, kept, taken_up]).sort("person_key", "valid_from", "persona", maintain_order=True)


def records_frame(parts: list[pl.DataFrame], population: Population, world: World) -> pl.DataFrame:
    """One row per landing line; turns the simulation's person and persona indexes into keys.

    `intent` is the planted persona the record's memory is about; `persona` is the same for
    on-intent records and null for noise, whose kind `noise` names ("generic": a bestseller,
    promotion, gift card, generic search or post; "off_persona": another persona's content).
    A memory's truth is the majority `persona` of its records, its purity that majority's share.
    """
    records = pl.concat(parts)
    intent = pl.Series(world.persona_keys).gather(records["_persona"])
    noise = pl.Series(NOISE_KINDS, dtype=pl.String).gather(records["_noise"])
    return records.with_columns(
        person_key=population.people["person_key"].gather(records["_person"]),
        intent=intent,
        persona=pl.when(noise.is_null()).then(intent),
        noise=noise,
        expected_reason=pl.col("broken_kind").replace_strict(EXPECTED_REASON, default=None, return_dtype=pl.String),
    ).select(
        "source", "entity", "landing_file", "line_no", "record_id", "event_date",
        "person_key", "persona", "intent", "noise", "memory_key", "broken_kind", "expected_reason",
    )


def write_truth(truth_dir: Path, manifest: dict, frames: dict[str, pl.DataFrame]) -> dict[str, str]:
    truth_dir.mkdir(parents=True, exist_ok=True)
    paths = {"manifest": str(truth_dir / "manifest.json")}
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for name, frame in frames.items():
        path = truth_dir / f"{name}.parquet"
        frame.write_parquet(path)
        paths[name] = str(path)
    return paths
