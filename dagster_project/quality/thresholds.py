"""The data-quality gates' thresholds, declared once: a default, an environment variable and a meaning per field.

Plain (no Dagster, no Great Expectations), so the definitions build the gates' Dagster config
from it (`run_config.config_from_settings`) without importing GX. A run's thresholds come from
that config; its defaults are these, each replaced by its environment variable when set.
"""

import os
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints


def _knob(default: Any, env: str, description: str) -> Any:
    return field(default=default, metadata={"env": env, "description": description})


@dataclass(frozen=True)
class QualityThresholds:
    """Every gate threshold; per-source ones keyed by the audit's source name."""

    max_reject_rate: float = _knob(
        0.05, "PERSONAS_GX_MAX_REJECT_RATE", "Largest share of a source's raw lines of a day that may be rejected.")
    source_reject_rates: tuple[tuple[str, float], ...] = _knob(
        (), "PERSONAS_GX_SOURCE_REJECT_RATES", 'Per-source reject-rate limits, e.g. {crm: 0.1} ("crm=0.1,import=0.2").')
    dense_sources: tuple[str, ...] = _knob(
        ("web", "social", "iot"), "PERSONAS_GX_DENSE_SOURCES",
        "Sources that must not go (nearly) silent; every other source, imported logs included, is sparse.")
    baseline_days: int = _knob(28, "PERSONAS_GX_BASELINE_DAYS", "Trailing days of the volume baseline.")
    min_history_days: int = _knob(
        7, "PERSONAS_GX_MIN_HISTORY_DAYS", "Non-empty days of history needed before volume is judged.")
    warn_mads: float = _knob(3.0, "PERSONAS_GX_WARN_MADS", "Half-width of the volume warning band, in robust deviations.")
    warn_min_spread: float = _knob(
        0.1, "PERSONAS_GX_WARN_MIN_SPREAD", "Floor of the robust deviation, as a share of the baseline median.")
    error_floor_ratio: float = _knob(
        0.05, "PERSONAS_GX_ERROR_FLOOR", "Share of the baseline below which a dense source's day blocks.")
    sample_rows: int = _knob(
        2_000, "PERSONAS_GX_SAMPLE_ROWS",
        "Unflagged rows per day that GX sees beside the flagged ones (what the Data Docs show; decides no verdict).")

    def __post_init__(self) -> None:
        rates = {"max_reject_rate": self.max_reject_rate, "error_floor_ratio": self.error_floor_ratio,
                 **{f"source_reject_rates[{source}]": rate for source, rate in self.source_reject_rates}}
        problems = [f"{name} = {rate} is not a share in [0, 1]" for name, rate in rates.items() if not 0 <= rate <= 1]
        problems += [f"{name} = {getattr(self, name)} must be at least 1"
                     for name in ("baseline_days", "min_history_days", "sample_rows") if getattr(self, name) < 1]
        if self.warn_mads <= 0 or self.warn_min_spread < 0:
            problems.append(f"warn_mads = {self.warn_mads} must be > 0 and warn_min_spread = {self.warn_min_spread} >= 0")
        if problems:
            raise ValueError("quality gate thresholds: " + "; ".join(problems))

    @classmethod
    def from_env(cls) -> "QualityThresholds":
        """The defaults, each replaced by its environment variable when set (lists comma-separated)."""
        hints = get_type_hints(cls)
        values = {
            knob.name: _parsed(os.environ[knob.metadata["env"]], hints[knob.name], knob.metadata["env"])
            for knob in fields(cls) if knob.metadata["env"] in os.environ
        }
        return cls(**values)

    def reject_rate_of(self, source: str) -> float:
        return dict(self.source_reject_rates).get(source, self.max_reject_rate)

    def is_sparse(self, source: str | None) -> bool:
        """Tables of several sources (source None) count as sparse: their sources are gated one by one."""
        return source not in self.dense_sources


def _parsed(text: str, hint: Any, variable: str) -> Any:
    """An environment value as its field's type: "0.1", "web,iot", "crm=0.1,import=0.2"."""
    try:
        if get_origin(hint) is not tuple:
            return hint(text)
        items = [item.strip() for item in text.split(",") if item.strip()]
        if get_origin(get_args(hint)[0]) is not tuple:
            return tuple(items)
        pairs = (item.split("=", 1) for item in items)
        return tuple(sorted((name.strip(), float(value)) for name, value in pairs))
    except ValueError as error:
        raise ValueError(f"{variable}={text!r}: {error} (expected {hint})") from error
