"""A small generated home run through the graph, with what the tests need captured right after the run."""

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetSelection, ExecuteInProcessResult

from dagster_project.generator import generate
from pipeline_helpers import materialize_range, query, using_home

START = date(2026, 10, 1)
LAST = START + timedelta(days=1)
SEED = 13  # "runner" is this seed's most common planted persona, so under-representing it is visible at this size
PEOPLE = 1300
# Utility, drift and the champion alias only aggregate what these produce; leaving them out saves test time.
PERSON_LEVEL_ASSETS = AssetSelection.all() - AssetSelection.assets("persona_utility", "persona_drift", "champion_model")


@dataclass(frozen=True)
class GeneratedRun:
    home: Path
    result: ExecuteInProcessResult
    fairness: list[tuple]  # persona_fairness rows: event_date, persona_id, attribute, value, gap_points, flagged


def materialise_generated_home(home: Path, underrepresent: tuple[str, str] | None = None) -> GeneratedRun:
    with using_home(home):
        generate(home, days=2, people=PEOPLE, events_per_day=5 * PEOPLE, seed=SEED, start_date=START, world="easy",
                 underrepresent=underrepresent)
        result = materialize_range(START, LAST, selection=PERSON_LEVEL_ASSETS)
        fairness = query("select event_date, persona_id, attribute, value, gap_points, flagged from persona_fairness "
                         "order by all")
    return GeneratedRun(home, result, fairness)
