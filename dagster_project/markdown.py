"""One Markdown table builder for every report the project writes (Dagster metadata, MLflow, BENCHMARKS.md).

Plain: no Dagster, no DuckDB. Callers format their own cells when a column needs a unit
(`f"{share:.1%}"`); anything else is written as `markdown_cell` writes it.
"""

import re
from collections.abc import Iterable, Sequence

FLOAT_DIGITS = 3
LINE_BREAKS = re.compile(r"[\r\n]+")


def markdown_cell(value: object) -> str:
    """A cell's text: empty for None, floats to three decimals, anything else as `str` gives it, on one line
    with `|` escaped, since a human label holding either would break the table."""
    if value is None:
        return ""
    text = f"{value:.{FLOAT_DIGITS}f}" if isinstance(value, float) else str(value)
    return LINE_BREAKS.sub(" ", text).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A pipe table, its lines joined by newlines (no trailing one).

    `align`: one letter per column, `r` to right-align it (numbers), `l` or nothing for the default.
    """
    if set(align) - {"l", "r"} or len(align) > len(header):
        raise ValueError(f"align {align!r}: one of 'l' or 'r' per column, at most {len(header)}")
    lines = [_row(header), "|" + "".join("---:|" if kind == "r" else "---|" for kind in align.ljust(len(header), "l"))]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row of {len(row)} cells under a header of {len(header)}: {row!r}")
        lines.append(_row(row))
    return "\n".join(lines)


def _row(values: Iterable[object]) -> str:
    return "| " + " | ".join(map(markdown_cell, values)) + " |"
