"""The code location's graph, compared with a committed snapshot (tests/graph_snapshot.json).

Asset keys, groups, dependencies, partitions (type, start), explicit partition mappings,
owners, kinds, tags, pools, automation conditions, which step computes each asset, asset
checks (with their partitions), jobs (selection resolved to keys), schedules, sensors and resource keys: so moving
modules around (issue #18's defs/ layout) provably leaves the graph as it was, and a lost
asset, dependency or check fails here. `code_version` is left out: it is derived from the
source text (see test_code_versions.py).

The graph is read in a fresh interpreter over a home that does not exist, with the default
first day, so neither this process's home nor earlier imports can change it; that import must
leave the home uncreated and set no variable of it (issue #18: no side effects at import).
After an intended change of the graph, regenerate the snapshot and review its diff:

    PERSONAS_UPDATE_GRAPH_SNAPSHOT=1 .venv/bin/pytest -q tests/test_graph_snapshot.py
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")
UPDATE_VARIABLE = "PERSONAS_UPDATE_GRAPH_SNAPSHOT"
DEFINITIONS_MODULE = "dagster_project.definitions"


def _partitions(partitions_def) -> dict | None:
    if partitions_def is None:
        return None
    described = {"type": type(partitions_def).__name__}
    if hasattr(partitions_def, "start"):
        described |= {"start": partitions_def.start.isoformat(), "cron": partitions_def.cron_schedule,
                      "timezone": partitions_def.timezone}
    return described


def _mapping(mapping) -> dict:
    return {"type": type(mapping).__name__,
            **{name: getattr(mapping, name) for name in ("start_offset", "end_offset") if hasattr(mapping, name)}}


def graph_snapshot() -> dict:
    """Everything the snapshot compares, as sorted JSON-ready values."""
    import importlib

    defs = importlib.import_module(DEFINITIONS_MODULE).defs
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partition_mappings": {parent.to_user_string(): _mapping(mapping)
                                   for parent, mapping in sorted(node.partition_mappings.items(), key=str)},
            "partitions": _partitions(node.partitions_def),
            "materializable": node.is_materializable,
            "step": node.assets_def.node_def.name if node.is_materializable else None,
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "tags": dict(sorted(node.tags.items())),
            "pools": sorted(node.pools or []),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "automation_condition": condition.get_label() if condition else None,
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        spec = graph.get_check_spec(check_key)
        checks[check_key.to_user_string()] = {
            "asset": spec.asset_key.to_user_string(),
            "blocking": spec.blocking,
            "additional_deps": sorted(dep.asset_key.to_user_string() for dep in spec.additional_deps),
            "partitions": _partitions(graph.get(check_key).partitions_def),
        }
    jobs = {
        job.name: {
            "assets": sorted(key.to_user_string() for key in job.selection.resolve(graph)),
            "checks": sorted(key.to_user_string() for key in job.selection.resolve_checks(graph)),
            "partitions": _partitions(job.partitions_def),
        }
        for job in sorted(defs.jobs or [], key=lambda job: job.name)
    }
    schedules = {
        schedule.name: {"cron": schedule.cron_schedule, "job": schedule.job_name,
                        "timezone": schedule.execution_timezone, "default_status": schedule.default_status.value}
        for schedule in sorted(defs.schedules or [], key=lambda schedule: schedule.name)
    }
    sensors = {
        sensor.name: {
            "job": sensor.job_name if sensor.has_jobs else None,
            "assets": sorted(key.to_user_string() for key in sensor.asset_selection.resolve(graph))
            if sensor.asset_selection is not None else None,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in sorted(defs.sensors or [], key=lambda sensor: sensor.name)
    }
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors,
            "resources": sorted(defs.resources or {})}


HOME_VARIABLES = ("DAGSTER_HOME", "PERSONAS_WAREHOUSE")


def _snapshot_in_fresh_process() -> dict:
    """The graph, read by a fresh interpreter that imports the code location over a home not yet created."""
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        environment = {key: value for key, value in os.environ.items()
                       if key not in ("PERSONAS_START_DATE", *HOME_VARIABLES)}
        environment["PERSONAS_HOME"] = str(home)
        printed = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=environment,
                                 cwd=Path(__file__).resolve().parents[1])
        assert printed.returncode == 0, printed.stderr[-3000:]
        imported = json.loads(printed.stdout)
        assert not home.exists(), f"importing the code location created {sorted(map(str, home.rglob('*')))[:10]}"
        assert imported["home_variables_set"] == [], "importing the code location set " + str(imported["home_variables_set"])
        return imported["graph"]


def _differences(expected: dict, actual: dict, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [line for key in sorted(expected.keys() | actual.keys())
                for line in (_differences(expected.get(key, "<missing>"), actual.get(key, "<missing>"), f"{path}/{key}")
                             if key in expected and key in actual
                             else [f"{path}/{key}: {'missing now' if key in expected else 'new'}"])]
    if isinstance(expected, list) and isinstance(actual, list) and expected != actual:
        return [f"{path}: {sign}{item!r}" for sign, items in (("-", expected), ("+", actual))
                for item in items if item not in (actual if sign == "-" else expected)] or [f"{path}: order changed"]
    return [] if expected == actual else [f"{path}: snapshot {expected!r}, now {actual!r}"]


def test_the_graph_matches_its_snapshot():
    actual = _snapshot_in_fresh_process()
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOT.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    differences = _differences(expected, actual)
    assert not differences, (
        f"The graph differs from {SNAPSHOT.name} ({UPDATE_VARIABLE}=1 regenerates it, if intended):\n"
        + "\n".join(differences[:60])
    )


def test_the_snapshot_holds_the_whole_graph():
    """A guard on the snapshot itself: an empty or truncated file would compare nothing."""
    snapshot = json.loads(SNAPSHOT.read_text())
    assert {"intent_memories", "personas", "fct_events", "champion_model", "raw/web__events"} <= snapshot["assets"].keys()
    assert snapshot["assets"]["memory_assignments"]["partition_mappings"]["intent_memories"]["start_offset"] < 0
    assert snapshot["asset_checks"], "no asset checks in the snapshot"
    assert snapshot["jobs"]["build_personas"]["assets"], "the build job selects nothing"


if __name__ == "__main__":
    graph = graph_snapshot()
    print(json.dumps({"graph": graph, "home_variables_set": [key for key in HOME_VARIABLES if key in os.environ]},
                     sort_keys=True))
