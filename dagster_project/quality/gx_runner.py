"""Validate pandas frames against the Great Expectations suites in `expectations/`.

Pure: imports neither Dagster nor DuckDB. The suites are GX 1.x JSON files, one per gated
table, read from `expectations/` at every validation, so editing a file changes the gate.
They are parameterised with `$PARAMETER` values of two kinds. The value sets they share with
dbt are filled in when a suite is read, from dbt's vars (`contract_parameters`), so each list
is declared once, in dbt/dbt_project.yml:

    sources                                  the sources of var `source_entities`
    built_in_sources, web_actions, social_actions   the vars of those names
    built_in_actions                         vars `web_actions` + `social_actions` + `record_actions`

The day's values only exist at validation time:

    partition_start, partition_end           the day being validated: [start, end)
    warn_min_row_count, warn_max_row_count   the robust band around the trailing baseline (severity warning)
    min_row_count                            the floor a dense source's day must reach (severity critical)

An expectation's `severity` decides what its failure does: `critical` fails the gate with
ERROR (blocking the day's downstream), `warning` with WARN (recorded, nothing blocked).

Volume baseline: the median and MAD of the table's non-empty days among the
`baseline_days` before the day, once at least `min_history_days` of them exist. A day
outside median ± `warn_mads` x max(1.4826 MAD, `warn_min_spread` x median) warns; a day
below `error_floor_ratio` x median fails, unless its source is sparse (known to have empty
or near-empty days). Every threshold, per-source ones included, is declared once in
`thresholds.QualityThresholds` (default, environment variable, meaning) and set per run as
the Dagster config of the `quality_gates` resource.

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

from dagster_project.dbt_vars import dbt_var
from dagster_project.quality.thresholds import QualityThresholds

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


DAY_PARAMETERS = frozenset(suite_parameters(date(2000, 1, 1), None, QualityThresholds()))


def contract_parameters() -> dict[str, list[str]]:
    """The value sets a suite shares with dbt, by the `$PARAMETER` name it uses, read from dbt's vars."""
    web, social = dbt_var("web_actions"), dbt_var("social_actions")
    return {
        "sources": list(dict.fromkeys(entity.split("__")[0] for entity in dbt_var("source_entities"))),
        "built_in_sources": dbt_var("built_in_sources"),
        "web_actions": web,
        "social_actions": social,
        "built_in_actions": [*web, *social, *dbt_var("record_actions")],
    }


def _with_contracts(node, contracts: dict[str, list[str]], suite: str):
    """`node` with each contract `$PARAMETER` replaced by its list; a name neither a contract nor a day value is refused,
    and so is a `$PARAMETER` with other keys beside it (GX would take the dict for the parameter, dropping the keys)."""
    if isinstance(node, list):
        return [_with_contracts(item, contracts, suite) for item in node]
    if not isinstance(node, dict):
        return node
    if "$PARAMETER" in node and len(node) > 1:
        raise ValueError(f"expectations/{suite}.json: {{\"$PARAMETER\": {node['$PARAMETER']!r}}} must stand alone, "
                         f"found beside it: {', '.join(sorted(set(node) - {'$PARAMETER'}))}")
    if set(node) == {"$PARAMETER"}:
        name = node["$PARAMETER"]
        if name not in contracts and name not in DAY_PARAMETERS:
            raise ValueError(f"expectations/{suite}.json: unknown $PARAMETER {name!r}; contract lists: "
                             f"{', '.join(sorted(contracts))}; per day: {', '.join(sorted(DAY_PARAMETERS))}")
        return contracts.get(name, node)
    return {key: _with_contracts(value, contracts, suite) for key, value in node.items()}


def _suite_json(name: str) -> dict:
    """The suite file with its contract lists filled in; the day's `$PARAMETER`s are left for validation."""
    return _with_contracts(json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text()), contract_parameters(), name)


def load_suite_expectations(name: str) -> list[dict]:
    """The suite's expectations (type, kwargs, meta), its contract lists filled in."""
    return _suite_json(name)["expectations"]


def load_suite(name: str) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(**_suite_json(name))


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
