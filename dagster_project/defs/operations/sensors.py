"""Reruns when sources change: a sensor that watches the landing zone by content hash; and the
daemon's watch for runs whose process died (`crashed_run_sensor`, see `recovery`).

A new or changed file for day D requests the raw load of partition D; everything
downstream follows through its automation condition (see automation.py), including the
persona fits of the days whose sliding window contains D. Stat data (size, mtime) only
decides which files to re-hash; a touch without a content change requests nothing.
"""

import hashlib
import json
from datetime import date
from pathlib import Path

from dagster import AssetSelection, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from dagster_project.ingest.landing import LANDING_ENTITIES
from dagster_project.paths import landing_dir, personas_home

RAW_ASSETS = AssetSelection.groups("raw")


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scan_landing(landing: Path, known: dict[str, list]) -> tuple[dict[str, list], dict[str, set[str]]]:
    """New state {relative path: [size, mtime_ns, sha256]} and the changed files per day."""
    state, changed_by_day = {}, {}
    for entity in LANDING_ENTITIES:
        folder = landing / entity.source / entity.entity
        for path in sorted(folder.glob(f"*.{entity.extension}")):
            try:
                day = date.fromisoformat(path.stem)
            except ValueError:
                continue  # not a daily landing file
            relative = str(path.relative_to(landing))
            stat = path.stat()
            previous = known.get(relative)
            if previous and previous[:2] == [stat.st_size, stat.st_mtime_ns]:
                state[relative] = previous
                continue
            digest = _fingerprint(path)
            state[relative] = [stat.st_size, stat.st_mtime_ns, digest]
            if not previous or previous[2] != digest:
                changed_by_day.setdefault(day.isoformat(), set()).add(relative)
    return state, changed_by_day


@sensor(
    name="landing_zone_sensor",
    asset_selection=RAW_ASSETS,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Requests the raw load of day D when a landing file of D is new or its content changed.",
)
def landing_zone_sensor(context: SensorEvaluationContext):
    known = json.loads(context.cursor) if context.cursor else {}
    state, changed_by_day = scan_landing(landing_dir(personas_home()), known)
    context.update_cursor(json.dumps(state, sort_keys=True))
    if not changed_by_day:
        return SkipReason("No new or changed landing files.")
    return [
        RunRequest(
            partition_key=day,
            run_key=f"{day}:{hashlib.sha256(''.join(state[f][2] for f in sorted(files)).encode()).hexdigest()[:16]}",
            tags={"personas/changed_files": ", ".join(sorted(files))[:1000]},
        )
        for day, files in sorted(changed_by_day.items())
    ]


@sensor(
    name="crashed_run_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Fails runs whose process is gone (kill -9, OOM, reboot), frees their pool slots, ends their MLflow runs; "
    "frees the slots runs that have ended still hold and ends the MLflow runs they left RUNNING.",
)
def crashed_run_sensor(context: SensorEvaluationContext):
    """The daemon's side of `operations.recovery`: the next CLI run does the same at its start."""
    from dagster_project.operations.recovery import end_fits_of_ended_runs, free_slots_of_ended_runs, recover_crashed_runs

    recovered = recover_crashed_runs(context.instance, personas_home())
    for run in recovered:
        context.log.warning(f"run {run.run_id} of dead process {run.pid} marked failed, its pool slots freed")
    freed = free_slots_of_ended_runs(context.instance)
    for run_id, status in freed:
        context.log.warning(f"run {run_id} ended ({status}) still holding pool slots: freed")
    ended_fits = end_fits_of_ended_runs(context.instance, personas_home())
    for run_id, count in ended_fits.items():
        context.log.warning(f"run {run_id} ended leaving {count} MLflow run(s) RUNNING: ended as FAILED")
    said = [f"{len(recovered)} crashed run(s) recovered." if recovered else "No crashed runs."]
    if freed:
        said.append(f"Pool slots of {len(freed)} ended run(s) freed.")
    if ended_fits:
        said.append(f"{sum(ended_fits.values())} MLflow run(s) of ended runs ended as FAILED.")
    return SkipReason(" ".join(said))
