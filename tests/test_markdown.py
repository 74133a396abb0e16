"""The one Markdown table builder that every report uses."""

import pytest

from dagster_project.markdown import markdown_table


def test_a_table_writes_header_alignment_and_cells_as_reports_show_them():
    table = markdown_table(["id", "label", "share", "gap"], [[1, "Tennis fan", 0.12345, None], [12, "", 1.0, -2]],
                           align="llr")
    assert table.splitlines() == [
        "| id | label | share | gap |",
        "|---|---|---:|---|",
        "| 1 | Tennis fan | 0.123 |  |",
        "| 12 |  | 1.000 | -2 |",
    ]
    assert markdown_table(["a"], []) == "| a |\n|---|"
    # A human label may hold a pipe or a line break; either would end the cell or the row.
    assert markdown_table(["a|b"], [["Fans | collectors\r\nof vinyl"]]).splitlines() == [
        "| a\\|b |", "|---|", "| Fans \\| collectors of vinyl |"]


def test_a_ragged_row_or_a_bad_alignment_is_refused():
    with pytest.raises(ValueError, match="row of 1 cells under a header of 2"):
        markdown_table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="one of 'l' or 'r'"):
        markdown_table(["a"], [], align="c")
    with pytest.raises(ValueError, match="at most 1"):
        markdown_table(["a"], [], align="rr")
