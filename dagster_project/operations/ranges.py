"""One bad day blocks only itself in a ranged run.

A run over a range is one single-run backfill: each blocking gate is one step over every
day, so a day whose warehouse gate (staging, audit, `fct_events`) fails at ERROR stops the
persona steps of the whole range. The gates validate every day on its own and name the
blocked ones (`failed_partitions`), so after such a run the persona assets (everything
downstream of `fct_events`) that did not run are run again over the sub-ranges between the
blocked days. The warehouse (raw lines, dbt, gates) is not rebuilt: it was built and
validated day by day in the first run. A persona gate fails only after its asset ran for
the whole range: that asset (and the persona fit, when `personas` or `user_personas` is
the gated one) is not run again, or every other day would be fitted twice.

Nothing is deleted: a day blocked at the warehouse keeps its warehouse rows, the failing
ones included, and whatever memories and personas an earlier run built for it (stale now);
a day blocked at a persona gate keeps the memories and personas that failed it. Either
waits for its data to be fixed and rerun with the command the gate names.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from dagster import AssetCheckSeverity, AssetKey, AssetSelection

GATE_PREFIX = "gx_"
WAREHOUSE_BOUNDARY = AssetKey("fct_events")


def _blocking_failures(result) -> list:
    """The gates' evaluations that failed at ERROR."""
    return [evaluation for evaluation in result.get_asset_check_evaluations()
            if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
            and evaluation.check_name.startswith(GATE_PREFIX)]


def blocked_days(result) -> dict[date, list[str]]:
    """The days a gate failed at ERROR, each with the gates that failed it."""
    days: dict[date, list[str]] = {}
    for evaluation in _blocking_failures(result):
        listed = evaluation.metadata.get("failed_partitions")
        names = str(listed.value).split(", ") if listed is not None else [evaluation.partition or ""]
        for name in names:
            if name and name != "none":
                days.setdefault(date.fromisoformat(name), []).append(evaluation.check_name)
    return days


def only_gates_failed(result) -> bool:
    """Every failed step is a blocking gate's: the run broke on data, not on code or resources."""
    failures = [event for event in result.all_events if event.is_step_failure]
    return bool(failures) and all(GATE_PREFIX in (event.step_key or "") for event in failures)


def ranges_between(first: date, last: date, excluded: set[date]) -> list[tuple[date, date]]:
    """The maximal runs of consecutive days of [first, last] outside `excluded`."""
    ranges, start = [], None
    day = first
    while day <= last:
        if day in excluded:
            if start is not None:
                ranges.append((start, day - timedelta(days=1)))
            start = None
        elif start is None:
            start = day
        day += timedelta(days=1)
    if start is not None:
        ranges.append((start, last))
    return ranges


def persona_assets(asset_graph) -> list[AssetKey]:
    """Everything downstream of the warehouse boundary: what a blocked gate keeps from running."""
    downstream = AssetSelection.assets(WAREHOUSE_BOUNDARY).downstream().resolve(asset_graph)
    return sorted(downstream - {WAREHOUSE_BOUNDARY}, key=lambda key: key.to_user_string())


def warehouse_gates_failed(result, asset_graph) -> set[str]:
    """The blocking gates at or above `fct_events` that failed (staging, audit, `fct_events`)."""
    persona_keys = set(persona_assets(asset_graph))
    return {evaluation.check_name for evaluation in _blocking_failures(result) if evaluation.asset_key not in persona_keys}


def skipped_persona_assets(result, asset_graph) -> list[AssetKey]:
    """The persona assets a failed gate kept from running in `result`: what the reruns build.

    A single-run backfill materialises an asset for the whole range or not at all: the
    assets that did (the persona tables whose gate failed) are not built twice.
    """
    built = {event.asset_key for event in result.get_asset_materialization_events()}
    return [key for key in persona_assets(asset_graph) if key not in built]


@dataclass
class RangeOutcome:
    """The first run, the persona reruns around the blocked days, and what is left to do."""

    first_run: object
    reruns: list[tuple[date, date, object]] = field(default_factory=list)
    blocked: dict[date, list[str]] = field(default_factory=dict)
    warehouse_gates: set[str] = field(default_factory=set)

    @property
    def success(self) -> bool:
        """Every day that is not blocked got its personas."""
        if self.first_run.success:
            return True
        return bool(self.blocked) and all(result.success for _, _, result in self.reruns)

    @property
    def run_ids(self) -> list[str]:
        return [self.first_run.run_id, *(result.run_id for _, _, result in self.reruns)]

    @property
    def run_id(self) -> str:
        return self.first_run.run_id

    @property
    def all_events(self) -> list:
        return [*self.first_run.all_events, *(event for _, _, result in self.reruns for event in result.all_events)]

    def get_asset_check_evaluations(self) -> list:
        """The first run's evaluations, then the reruns' (persona gates of the unblocked days)."""
        return [*self.first_run.get_asset_check_evaluations(),
                *(evaluation for _, _, result in self.reruns for evaluation in result.get_asset_check_evaluations())]
