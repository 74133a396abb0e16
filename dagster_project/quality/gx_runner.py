"""Validate pandas frames against the Great Expectations suites in `expectations/`.

Pure: imports neither Dagster nor DuckDB. The suites are GX 1.x JSON files, one per gated
table, read from `expectations/` at every validation, so editing a file changes the gate.
They are parameterised with `$PARAMETER` values that only exist at validation time:

    partition_start, partition_end           the day being validated: [start, end)
    warn_min_row_count, warn_max_row_count   the robust band around the trailing baseline (severity warning)
    min_row_count                            the floor a dense source's day must reach (severity critical)

An expectation's `severity` decides what its failure does: `critical` fails the gate with
ERROR (blocking the day's downstream), `warning` with WARN (recorded, nothing blocked).

Volume baseline: the median and MAD of the table's non-empty days among the
`baseline_days` before the day, once at least `min_history_days` of them exist. A day
outside median ± `warn_mads` x max(1.4826 MAD, `warn_min_spread` x median) warns; a day
below `error_floor_ratio` x median fails, unless its source is sparse (known to have empty
or near-empty days). Per-source limits (`SourceGate`) are declared once in `QualityThresholds`
and read from the environment, or set as Dagster config (`checks.QualityGates`):

    PERSONAS_GX_MAX_REJECT_RATE     share of a source's raw lines of a day that may be rejected (default 0.05)
    PERSONAS_GX_SOURCE_REJECT_RATES per-source overrides, e.g. "crm=0.1,import=0.2"
    PERSONAS_GX_DENSE_SOURCES       sources that must not go (nearly) silent (default "web,social,iot");
                                    every other source, imported logs included, is sparse
    PERSONAS_GX_BASELINE_DAYS       trailing days of the baseline (default 28)
    PERSONAS_GX_MIN_HISTORY_DAYS    non-empty days needed before volume checks apply (default 7)
    PERSONAS_GX_WARN_MADS           width of the warning band in robust deviations (default 3)
    PERSONAS_GX_ERROR_FLOOR         share of the baseline below which a dense source's day fails (default 0.05)

Validations run through a file Data Context under `$PERSONAS_HOME/gx/`, which keeps every
result, so `build_data_docs` can render the suites and their history as a static site.
"""

import functools
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from scipy.stats import median_abs_deviation

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
DATA_SOURCE = "warehouse"
BATCH_DEFINITION = "partition"
DATA_DOCS_SITE = "local_site"
UNEXPECTED_EXAMPLES = 3
VENDORED_ASSETS_DIR = Path(__file__).with_name("data_docs_vendor")  # see its README.md: npm packages, licenses
# The CDN addresses in GX's Data Docs templates -> the same builds under the site's static/vendor/.
VENDORED_ASSETS = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-prefers-dark.min.css",
}
GX_STATIC_LINK = re.compile(r"""(["'(])(?:\.\./)+static/""")
SRI_ATTRIBUTES = re.compile(r'\s+(?:integrity="[^"]*"|crossorigin="anonymous")')
REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"')\s]*\.png[^\"')\s]*")


def _pairs(text: str) -> dict[str, float]:
    """"crm=0.1,import=0.2" -> {"crm": 0.1, "import": 0.2}."""
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {name.strip(): float(value) for name, value in pairs}


@dataclass(frozen=True)
class QualityThresholds:
    """Every gate threshold, declared once; per-source ones keyed by the audit's source name."""

    max_reject_rate: float = 0.05
    source_reject_rates: tuple[tuple[str, float], ...] = ()
    dense_sources: tuple[str, ...] = ("web", "social", "iot")
    baseline_days: int = 28
    min_history_days: int = 7
    warn_mads: float = 3.0
    warn_min_spread: float = 0.1
    error_floor_ratio: float = 0.05

    @classmethod
    def from_env(cls, **overrides) -> "QualityThresholds":
        """Read at validation time, so a changed variable applies to the next run without a reload."""
        defaults = cls()
        env = os.environ.get
        values = {
            "max_reject_rate": float(env("PERSONAS_GX_MAX_REJECT_RATE", defaults.max_reject_rate)),
            "source_reject_rates": tuple(sorted(_pairs(env("PERSONAS_GX_SOURCE_REJECT_RATES", "")).items())),
            "dense_sources": tuple(
                name.strip() for name in env("PERSONAS_GX_DENSE_SOURCES", ",".join(defaults.dense_sources)).split(",")
                if name.strip()
            ),
            "baseline_days": int(env("PERSONAS_GX_BASELINE_DAYS", defaults.baseline_days)),
            "min_history_days": int(env("PERSONAS_GX_MIN_HISTORY_DAYS", defaults.min_history_days)),
            "warn_mads": float(env("PERSONAS_GX_WARN_MADS", defaults.warn_mads)),
            "warn_min_spread": float(env("PERSONAS_GX_WARN_MIN_SPREAD", defaults.warn_min_spread)),
            "error_floor_ratio": float(env("PERSONAS_GX_ERROR_FLOOR", defaults.error_floor_ratio)),
        }
        return cls(**{**values, **{key: value for key, value in overrides.items() if value is not None}})

    def reject_rate_of(self, source: str) -> float:
        return dict(self.source_reject_rates).get(source, self.max_reject_rate)

    def is_sparse(self, source: str | None) -> bool:
        """Tables of several sources (source None) count as sparse: their sources are gated one by one."""
        return source not in self.dense_sources


@dataclass(frozen=True)
class VolumeBaseline:
    """The robust centre and spread of a table's trailing non-empty days."""

    median: float
    spread: float
    history_days: int


def volume_baseline(history: list[int], thresholds: QualityThresholds) -> VolumeBaseline | None:
    """Median and scaled MAD of the history, or None before `min_history_days` non-empty days exist."""
    counts = [count for count in history if count > 0]
    if len(counts) < thresholds.min_history_days:
        return None
    median = float(np.median(counts))
    mad = float(median_abs_deviation(counts, scale="normal"))
    return VolumeBaseline(median, max(mad, thresholds.warn_min_spread * median), len(counts))


def suite_parameters(
    day: date, history: list[int] | None, thresholds: QualityThresholds, sparse: bool = True
) -> dict:
    """The `$PARAMETER` values of one day; without enough history, no row-count bound applies.

    `history`: the table's row counts on the trailing days (empty days may be left out);
    `sparse`: the table's source may have empty days, so neither the floor nor the lower band applies.
    """
    start = datetime.combine(day, time())
    parameters = {
        "partition_start": start,
        "partition_end": start + timedelta(days=1),
        "min_row_count": 0,
        "warn_min_row_count": 0,
        "warn_max_row_count": None,
        "max_reject_rate": thresholds.max_reject_rate,
    }
    baseline = volume_baseline(history or [], thresholds)
    if baseline is None:
        return parameters
    band = thresholds.warn_mads * baseline.spread
    parameters["warn_max_row_count"] = math.floor(baseline.median + band)
    if not sparse:
        parameters["warn_min_row_count"] = max(0, math.ceil(baseline.median - band))
        parameters["min_row_count"] = math.ceil(thresholds.error_floor_ratio * baseline.median)
    return parameters


@dataclass(frozen=True)
class FailedExpectation:
    name: str
    unexpected: list[str]
    critical: bool = True


@dataclass(frozen=True)
class ValidationOutcome:
    """`by_gx`: Great Expectations ran; False for a day the SQL screen cleared of every expectation."""

    suite: str
    success: bool
    evaluated: int
    failed: int
    failed_expectations: list[FailedExpectation]
    by_gx: bool = True

    @property
    def blocking(self) -> bool:
        """A critical expectation failed: the day's downstream must not run."""
        return any(failure.critical for failure in self.failed_expectations)


def passed(suite_name: str, expectations: int) -> ValidationOutcome:
    """The outcome of a day with no suspect row and its row count in bounds: every expectation holds."""
    return ValidationOutcome(suite_name, True, expectations, 0, [], by_gx=False)


def load_suite_expectations(name: str) -> list[dict]:
    """The suite's expectations as written in its JSON file (type, kwargs, meta)."""
    return json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text())["expectations"]


def load_suite(name: str) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(**json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text()))


@functools.cache
def gx_context(home: Path):
    """The file Data Context of a home (`<home>/gx/`), created on first use without progress bars in the logs.

    Kept for the process: loading it costs more than a validation of a day's frame.
    """
    context = gx.get_context(mode="file", project_root_dir=str(home))
    if not context.variables.progress_bars:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
    return context


def _batch_definition(context, suite_name: str):
    """One dataframe asset per suite, so Data Docs list each table's results apart."""
    sources = context.data_sources.all()
    source = sources[DATA_SOURCE] if DATA_SOURCE in sources else context.data_sources.add_pandas(DATA_SOURCE)
    # `source.assets` holds copies detached from the context: fetch the asset through `get_asset`.
    if suite_name in {asset.name for asset in source.assets}:
        asset = source.get_asset(suite_name)
    else:
        asset = source.add_dataframe_asset(suite_name)
    if BATCH_DEFINITION in {definition.name for definition in asset.batch_definitions}:
        return asset.get_batch_definition(BATCH_DEFINITION)
    return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def describe_expectation(result: ExpectationValidationResult) -> str:
    """`type(columns)`, plus the PII pattern sought: `expect_column_values_to_not_match_regex(text, email)`."""
    config = result.expectation_config
    kwargs = config.kwargs
    arguments = [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]
    arguments += kwargs.get("column_list", [])
    if "pattern" in (config.meta or {}):
        arguments.append(config.meta["pattern"])
    return f"{config.type}({', '.join(arguments)})"


def _example(value, kwargs: dict) -> str:
    """A value as written; a column pair's values named: `reject_rate_limit=0.05, reject_rate=0.21`."""
    if isinstance(value, tuple | list) and "column_A" in kwargs:
        named = zip((kwargs["column_A"], kwargs["column_B"]), value, strict=False)
        return ", ".join(f"{name}={item.item() if hasattr(item, 'item') else item}" for name, item in named)
    return str(value)


def _unexpected_examples(result: ExpectationValidationResult) -> list[str]:
    details = result.result or {}
    if details.get("partial_unexpected_list"):
        kwargs = result.expectation_config.kwargs
        return [_example(value, kwargs) for value in details["partial_unexpected_list"][:UNEXPECTED_EXAMPLES]]
    if details.get("observed_value") is not None:
        return [f"observed {details['observed_value']}"]
    if result.exception_info and result.exception_info.get("raised_exception"):
        return [str(result.exception_info["exception_message"])]
    return []


def _is_critical(result: ExpectationValidationResult) -> bool:
    """Only `warning` and `info` expectations are non-blocking; anything else (and no severity) blocks."""
    severity = getattr(result.expectation_config, "severity", None)
    return str(getattr(severity, "value", severity) or "critical").lower() not in ("warning", "info")


def validation_run_id(suite_name: str, day: date) -> RunIdentifier:
    """Names a kept validation by suite and partition day (Data Docs list it so, instead of "__none__")."""
    return RunIdentifier(run_name=f"{suite_name} {day}", run_time=datetime.now(UTC))


def validate_frame(frame: pd.DataFrame, suite_name: str, parameters: dict, home: Path) -> ValidationOutcome:
    """Validate `frame` against the suite as it is on disk now; the result is kept for Data Docs."""
    context = gx_context(home)
    suite = context.suites.add_or_update(load_suite(suite_name))
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=_batch_definition(context, suite_name), suite=suite)
    )
    result = validation.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": UNEXPECTED_EXAMPLES},
        run_id=validation_run_id(suite_name, parameters["partition_start"].date()),
    )
    failures = [
        FailedExpectation(describe_expectation(outcome), _unexpected_examples(outcome), _is_critical(outcome))
        for outcome in result.results
        if not outcome.success
    ]
    return ValidationOutcome(
        suite=suite_name,
        success=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failed=len(failures),
        failed_expectations=failures,
    )


def build_data_docs(home: Path) -> Path:
    """Render the suites and every kept validation result as a site that works offline; its index.html."""
    context = gx_context(home)
    for path in sorted(EXPECTATIONS_DIR.glob("*.json")):
        context.suites.add_or_update(load_suite(path.stem))
    context.build_data_docs(site_names=[DATA_DOCS_SITE])
    site = home / "gx" / "uncommitted" / "data_docs" / DATA_DOCS_SITE
    use_vendored_assets(site)
    return site / "index.html"


def use_vendored_assets(site: Path) -> None:
    """Copy the vendored scripts, stylesheets and fonts into `static/vendor/` and point every page at
    them instead of the CDNs (and GX's logos at the local logo instead of remote, tracked images)."""
    vendor = site / "static" / "vendor"
    shutil.copytree(VENDORED_ASSETS_DIR, vendor, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md", "licenses"))
    for page in [*site.rglob("*.html"), *(site / "static" / "styles").glob("*.css")]:
        to_static = Path(os.path.relpath(site / "static", page.parent)).as_posix()
        page.write_text(_with_local_assets(page.read_text(encoding="utf-8"), to_static), encoding="utf-8")


def _with_local_assets(text: str, to_static: str) -> str:
    """A page's text with its CDN, logo and static links pointed at `to_static` (its relative path to static/)."""
    text = SRI_ATTRIBUTES.sub("", text)  # a file:// page cannot check them
    # GX climbs one folder too many from a validation page (validations/<suite>/<run>/<time>/<batch>.html)
    text = GX_STATIC_LINK.sub(lambda link: f"{link[1]}{to_static}/", text)
    for address, name in VENDORED_ASSETS.items():
        text = text.replace(address, f"{to_static}/vendor/{name}")
    return REMOTE_LOGO.sub(f"{to_static}/images/logo-long.png", text)
