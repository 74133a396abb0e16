"""Screen a range of days in SQL, so Great Expectations only sees the rows and days that need it.

Pandas GX costs about 50 µs per row and expectation set (42 s for a 830k-row web day) plus
about 0.5 s per validation whatever the frame's size, so neither a large day nor many small
days can go through it whole. Each row-level expectation of a suite becomes a SQL predicate
that is true when the row breaks it (a null, a value outside the set or range, a regex hit, a
duplicate key within its day); the day's bounds (`partition_start`, `partition_end`) become
expressions of each row's own day, so one query screens every day of a range. A day with no
flagged row and a row count inside its bounds passes every expectation of the suite: it needs
no GX run. Any other day, and the newest day with rows (so each run leaves a GX result for
the Data Docs), is validated by GX on every flagged row plus a sample of the others ordered
by a hash of the row, with the row-count bounds scaled by (frame rows / day rows), which is
exact for integers. So each gate passes or fails as it would on the full day (DuckDB's RE2 and
Python's `re` agree on the suites' patterns); only the unexpected percentages in the Data Docs
refer to the screened frame. An expectation type without a SQL screen raises, rather than pass
unseen. The sample's size decides no verdict, only how many typical rows the Data Docs show,
so it is small (`QualityThresholds.sample_rows`, default 2,000): 2,000 rows cost the 13 gates
of a 1M-event day 1.6 s less than 10,000.
Pure: builds SQL text, imports no DuckDB.
"""

from datetime import datetime


class SqlExpression(str):
    """A parameter value that is SQL text evaluated per row (e.g. the row's day), not a literal."""


def per_day_parameters(day_column: str) -> dict:
    """The day's bounds as expressions of each row's `day_column`, so one query screens many days.

    Row-level expectations take no other parameter (row counts are table-level): one that did
    would fail the screen loudly on its missing value.
    """
    day = _quoted(day_column)
    return {
        "partition_start": SqlExpression(f"{day}::timestamp"),
        "partition_end": SqlExpression(f"({day} + interval 1 day)"),
    }


def _literal(value) -> str:
    if isinstance(value, SqlExpression):
        return str(value)
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _resolve(value, parameters: dict):
    return parameters[value["$PARAMETER"]] if isinstance(value, dict) and "$PARAMETER" in value else value


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _row_condition(condition: dict | None) -> str:
    """The comparison row conditions the suites use (`column IN (...)`); none is always true."""
    if not condition:
        return "true"
    if condition.get("type") != "comparison" or condition.get("operator") != "IN":
        raise ValueError(f"unsupported row condition {condition}")
    values = ", ".join(_literal(value) for value in condition["parameter"])
    return f"{_quoted(condition['column']['name'])} in ({values})"


def violation_predicate(expectation: dict, day_column: str) -> str | None:
    """SQL true where a row breaks a row-level expectation; None for table-level ones.

    The predicate reads the rows as `frame`, the name `screened_frame_sql` gives them; keys need
    only be unique within their day (`day_column`), as when GX validates one day's frame.
    """
    kind, kwargs = expectation["type"], expectation["kwargs"]
    parameters, day = per_day_parameters(day_column), [_quoted(day_column)]
    column = _quoted(kwargs["column"]) if "column" in kwargs else None
    present = f"{column} is not null" if column else "true"
    if kind == "expect_column_values_to_not_be_null":
        return f"{column} is null"
    if kind == "expect_column_values_to_be_in_set":
        values = ", ".join(_literal(value) for value in kwargs["value_set"])
        return f"{present} and {_row_condition(kwargs.get('row_condition'))} and {column} not in ({values})"
    if kind == "expect_column_values_to_be_between":
        low, high = _resolve(kwargs.get("min_value"), parameters), _resolve(kwargs.get("max_value"), parameters)
        outside = []
        if low is not None:
            outside.append(f"{column} {'<=' if kwargs.get('strict_min') else '<'} {_literal(low)}")
        if high is not None:
            outside.append(f"{column} {'>=' if kwargs.get('strict_max') else '>'} {_literal(high)}")
        return f"{present} and ({' or '.join(outside) or 'false'})"
    if kind == "expect_column_values_to_match_regex":
        return f"{present} and not regexp_matches({column}::varchar, {_literal(kwargs['regex'])})"
    if kind == "expect_column_values_to_not_match_regex":
        return f"{present} and regexp_matches({column}::varchar, {_literal(kwargs['regex'])})"
    if kind == "expect_column_values_to_be_unique":
        # A semi-join on the duplicated keys: a window would carry every column of the day through a sort.
        key = ", ".join([*day, column])
        return f"{present} and ({key}) in (select ({key}) from frame group by all having count(*) > 1)"
    if kind == "expect_compound_columns_to_be_unique":
        columns = ", ".join(day + [_quoted(name) for name in kwargs["column_list"]])
        return f"count(*) over (partition by {columns}) > 1"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _quoted(kwargs["column_A"]), _quoted(kwargs["column_B"])
        return f"{a} is not null and {b} is not null and not ({a} {'>=' if kwargs.get('or_equal') else '>'} {b})"
    if kind == "expect_table_row_count_to_be_between":
        return None
    raise ValueError(f"no SQL screen for {kind}")


FORBIDDEN_PATTERN = "expect_column_values_to_not_match_regex"


def merged_forbidden_patterns(expectations: list[dict]) -> list[dict]:
    """The suites' `not_match_regex` expectations of one column as one alternation.

    A row is suspect when any forbidden pattern hits, so one regex per column flags the same
    rows; RE2 then scans each text once instead of once per pattern (3x faster on the PII masks).
    """
    def mergeable(expectation: dict) -> bool:
        return expectation["type"] == FORBIDDEN_PATTERN and set(expectation["kwargs"]) == {"column", "regex"}

    forbidden: dict[str, list[str]] = {}
    for expectation in filter(mergeable, expectations):
        forbidden.setdefault(expectation["kwargs"]["column"], []).append(expectation["kwargs"]["regex"])
    return [expectation for expectation in expectations if not mergeable(expectation)] + [
        {"type": FORBIDDEN_PATTERN, "kwargs": {"column": column, "regex": "|".join(f"(?:{regex})" for regex in regexes)}}
        for column, regexes in forbidden.items()
    ]


def _flagged_sql(frame_sql: str, expectations: list[dict], day_column: str) -> str:
    """`frame_sql`'s rows as `flagged`, each with `_suspect` (it breaks an expectation of its day) and `_row_hash`."""
    screens = merged_forbidden_patterns(expectations)
    predicates = [p for p in (violation_predicate(e, day_column) for e in screens) if p is not None]
    suspect = " or ".join(f"coalesce({predicate}, false)" for predicate in predicates) or "false"
    return f"""
        with frame as ({frame_sql}),
        flagged as (select *, {suspect} as _suspect, hash(frame) as _row_hash from frame)"""


def suspect_counts_sql(frame_sql: str, expectations: list[dict], day_column: str) -> str:
    """Per day of `frame_sql`: its rows and how many break a row-level expectation (one scan for a whole range)."""
    day = _quoted(day_column)
    return f"""{_flagged_sql(frame_sql, expectations, day_column)}
        select {day}, count(*) as day_rows, count(*) filter (where _suspect) as suspect_rows from flagged group by {day}
    """


def screened_frame_sql(frame_sql: str, expectations: list[dict], limit: int, day_column: str) -> str:
    """Every row of `frame_sql` that breaks an expectation, plus `limit` others per day, chosen by row hash.

    The rows may span several days (`day_column`), each screened against its own day's bounds.
    """
    sample = f"row_number() over (partition by {_quoted(day_column)} order by _row_hash) <= {int(limit)}"
    return f"""{_flagged_sql(frame_sql, expectations, day_column)}
        select * exclude (_suspect, _row_hash) from flagged where _suspect
        union all
        select * exclude (_suspect, _row_hash) from flagged where not _suspect qualify {sample}
    """


def row_count_violated(expectations: list[dict], parameters: dict, day_rows: int) -> bool:
    """Whether a day of `day_rows` rows breaks a table row-count expectation of the suite."""
    for expectation in expectations:
        if expectation["type"] != "expect_table_row_count_to_be_between":
            continue
        low = _resolve(expectation["kwargs"].get("min_value"), parameters)
        high = _resolve(expectation["kwargs"].get("max_value"), parameters)
        if (low is not None and day_rows < low) or (high is not None and day_rows > high):
            return True
    return False


def scaled_row_count_parameters(parameters: dict, frame_rows: int, day_rows: int) -> dict:
    """Row-count bounds for the screened frame: `day_rows` is in [lo, hi] iff `frame_rows` is in the scaled bounds.

    Every `*min_row_count` parameter is a lower bound (scaled up), every `*max_row_count` an upper one.
    """
    if day_rows == 0 or frame_rows == day_rows:
        return parameters
    # Integer arithmetic: with a float ratio, a day of exactly the bound's rows could scale to
    # 2000.0000000000002 and fail (2,000 of 2,141 rows).
    scaled = dict(parameters)
    for key, bound in parameters.items():
        if key.endswith("min_row_count") and bound:
            scaled[key] = -(-bound * frame_rows // day_rows)
        elif key.endswith("max_row_count") and bound is not None:
            scaled[key] = bound * frame_rows // day_rows
    return scaled
