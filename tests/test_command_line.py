"""The command line's own parts on small inputs: the first partition of a home, the progress lines, the share plot."""

import io
import re
from datetime import date
from types import SimpleNamespace

import matplotlib.pyplot as plt
import polars as pl
from rich.console import Console

from dagster_project.partitions import first_partition_day
from dagster_project.paths import record_first_data_day
from dagster_project.progress import StepProgress, step_message
from dagster_project.tracking.report import share_history_figure


def test_the_first_partition_is_the_recorded_day_which_only_moves_back(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONAS_START_DATE", "2026-01-01")
    assert first_partition_day(tmp_path) == date(2026, 1, 1)  # no data yet
    landed = tmp_path / "landing" / "web" / "events" / "2026-10-03.jsonl"
    landed.parent.mkdir(parents=True)
    landed.write_text("{}\n")
    (landed.parent / ".2026-09-01.jsonl.importing").write_text("")  # a file being written is not a day
    assert first_partition_day(tmp_path) == date(2026, 10, 3)  # a home whose sources write the landing zone
    assert record_first_data_day(tmp_path, date(2026, 10, 5)) == date(2026, 10, 5)
    assert first_partition_day(tmp_path) == date(2026, 10, 5)  # the record wins
    assert record_first_data_day(tmp_path, date(2019, 9, 1)) == date(2019, 9, 1)
    assert record_first_data_day(tmp_path, date(2026, 11, 1)) == date(2019, 9, 1)  # never forward
    assert first_partition_day(tmp_path) == date(2019, 9, 1)


def _event(event_type: str, step_key: str, error: str | None = None):
    cause = SimpleNamespace(message=error, cause=None) if error else None
    wrapper = SimpleNamespace(message="Error occurred while executing op", cause=cause) if error else None
    return event_type, step_key, wrapper


def test_plain_progress_is_one_line_per_finished_step_and_a_failure_names_its_cause_and_the_log(tmp_path):
    out = io.StringIO()
    log = tmp_path / "run.log"
    with StepProgress("2026-10-01..2026-10-02", 4, log, Console(file=out, width=200)) as progress:
        for event_type, step_key, error in [
            _event("STEP_START", "raw_landing_lines"), _event("STEP_SUCCESS", "raw_landing_lines"),
            _event("STEP_START", "dbt_warehouse"),
            _event("STEP_FAILURE", "dbt_warehouse", "events.csv:7: expected 4 columns"),
        ]:
            message = step_message(SimpleNamespace(event_specific_data=SimpleNamespace(error=error), message=""))
            progress.on_event(event_type, step_key, message)
        progress.on_event("ASSET_MATERIALIZATION", "raw_landing_lines", "")  # not a step's end: no line
        progress.on_event("RUN_START", None, "")
    lines = out.getvalue().splitlines()
    assert lines[0] == f"2026-10-01..2026-10-02: 4 steps (log: {log})"
    assert "[ 1/4]" in lines[1] and lines[1].rstrip().split("  ")[-1].startswith("raw_landing_lines done in ")
    assert lines[2].startswith("FAILED step dbt_warehouse in ") and lines[2].endswith(": events.csv:7: expected 4 columns")
    assert lines[3] == f"  full log: {log}"
    assert lines[4] == f"  2 of 4 steps not run: a step they need failed or a gate blocked them (log: {log})"
    assert len(lines) == 5


def test_the_share_plot_draws_one_line_per_persona_id_named_by_id_and_latest_label():
    history = pl.DataFrame({
        "event_date": [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 1), date(2026, 10, 2)],
        "persona_id": [1, 1, 2, 2],
        "label": ["tennis", "tennis rackets", "tennis", "tennis"],  # two personas share a label on the first day
        "share": [0.5, 0.4, 0.5, 0.6],
    })
    figure = share_history_figure(history)
    try:
        [axes] = figure.axes
        assert [text.get_text() for text in axes.get_legend().get_texts()] == ["1: tennis rackets", "2: tennis"]
        assert len(axes.get_lines()) == 2
    finally:
        plt.close(figure)


def test_the_summary_reads_the_warehouse_while_a_failed_steps_connection_waits_for_collection(tmp_path):
    """After a failed step, its traceback can hold a read-write connection in a reference cycle; DuckDB then
    refuses a read-only one in the same process ("different configuration") until the cycle is collected."""
    import gc

    import duckdb

    from dagster_project.paths import warehouse_path
    from dagster_project.summary import warehouse_summary

    connection = duckdb.connect(str(warehouse_path(tmp_path)))
    connection.execute("create table fct_events as select 1 as event_id")
    cycle = [connection]
    cycle.append(cycle)
    del connection, cycle
    gc.disable()  # the cycle stays alive until someone collects it, as it did after the failed run
    try:
        summary = warehouse_summary(tmp_path)
    finally:
        gc.enable()
    assert re.search(r"^\s*fct_events\s+1$", summary, re.MULTILINE), summary
