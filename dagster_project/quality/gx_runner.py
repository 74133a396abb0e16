"""Validate pandas frames against the Great Expectations suites in `expectations/`.

Pure: imports neither Dagster nor DuckDB. The suites are GX 1.x JSON files, one per gated
table, read from `expectations/` at every validation, so editing a file changes the gate.
They are parameterised with `$PARAMETER` values that only exist at validation time:

    partition_start, partition_end   the day being validated: [start, end)
    min_row_count, max_row_count     bounds relative to the previous day's row count
    max_reject_rate                  the largest accepted share of rejected raw lines

Thresholds come from the environment:

    PERSONAS_GX_MAX_REJECT_RATE   share of a source's raw lines of a day that may be rejected (default 0.05)
    PERSONAS_GX_MIN_ROW_RATIO     a day's rows at least this multiple of the previous day's (default 0.5)
    PERSONAS_GX_MAX_ROW_RATIO     and at most this multiple (default 2.0); without a previous day, no bound

Validations run through a file Data Context under `$PERSONAS_HOME/gx/`, which keeps every
result, so `build_data_docs` can render the suites and their history as a static site.
"""

import functools
import json
import math
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
DATA_SOURCE = "warehouse"
BATCH_DEFINITION = "partition"
DATA_DOCS_SITE = "local_site"
UNEXPECTED_EXAMPLES = 3


@dataclass(frozen=True)
class QualityThresholds:
    max_reject_rate: float = 0.05
    min_row_ratio: float = 0.5
    max_row_ratio: float = 2.0

    @classmethod
    def from_env(cls) -> "QualityThresholds":
        """Read at validation time, so a changed variable applies to the next run without a reload."""
        defaults = cls()
        return cls(
            max_reject_rate=float(os.environ.get("PERSONAS_GX_MAX_REJECT_RATE", defaults.max_reject_rate)),
            min_row_ratio=float(os.environ.get("PERSONAS_GX_MIN_ROW_RATIO", defaults.min_row_ratio)),
            max_row_ratio=float(os.environ.get("PERSONAS_GX_MAX_ROW_RATIO", defaults.max_row_ratio)),
        )


def suite_parameters(day: date, previous_row_count: int | None, thresholds: QualityThresholds) -> dict:
    """The `$PARAMETER` values of one day; a previous day without rows sets no row-count bound."""
    start = datetime.combine(day, time())
    has_previous = bool(previous_row_count)
    return {
        "partition_start": start,
        "partition_end": start + timedelta(days=1),
        "min_row_count": math.ceil(previous_row_count * thresholds.min_row_ratio) if has_previous else 0,
        "max_row_count": math.floor(previous_row_count * thresholds.max_row_ratio) if has_previous else None,
        "max_reject_rate": thresholds.max_reject_rate,
    }


@dataclass(frozen=True)
class FailedExpectation:
    name: str
    unexpected: list[str]


@dataclass(frozen=True)
class ValidationOutcome:
    suite: str
    success: bool
    evaluated: int
    failed: int
    failed_expectations: list[FailedExpectation]


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


def _unexpected_examples(result: ExpectationValidationResult) -> list[str]:
    details = result.result or {}
    if details.get("partial_unexpected_list"):
        return [str(value) for value in details["partial_unexpected_list"][:UNEXPECTED_EXAMPLES]]
    if details.get("observed_value") is not None:
        return [f"observed {details['observed_value']}"]
    if result.exception_info and result.exception_info.get("raised_exception"):
        return [str(result.exception_info["exception_message"])]
    return []


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
    )
    failures = [
        FailedExpectation(describe_expectation(outcome), _unexpected_examples(outcome))
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
    """Render the suites and every kept validation result; returns the site's index.html."""
    context = gx_context(home)
    for path in sorted(EXPECTATIONS_DIR.glob("*.json")):
        context.suites.add_or_update(load_suite(path.stem))
    context.build_data_docs(site_names=[DATA_DOCS_SITE])
    return home / "gx" / "uncommitted" / "data_docs" / DATA_DOCS_SITE / "index.html"
