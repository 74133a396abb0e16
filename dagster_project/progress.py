"""What a `personas` command shows while Dagster runs: steps done and left, the current step, elapsed time.

Dagster's event stream (about 1,200 DEBUG lines for the demo) and the libraries' own logging
and warnings go to one log file per command under `$PERSONAS_HOME/logs/`; `--verbose`
streams them to the terminal as well. On a terminal the progress is a live `rich` bar; when
stdout is not a terminal (CI, pipes, tests) it is one plain line per finished step.
A failed step is printed at once with its error and the log file that holds the rest.
"""

import io
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dagster_project.paths import logs_dir

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STEP_DONE_EVENTS = {"STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}


def command_log_path(home: Path, command: str) -> Path:
    """A new log file for one command: `logs/<UTC time>-<command>.log`."""
    folder = logs_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{command}.log"


@contextmanager
def logging_to_file(path: Path, verbose: bool) -> Iterator[logging.Handler]:
    """Route every Python log record and warning of the block to `path`, through the handler it yields;
    the terminal gets them only when `verbose`: libraries that print through their own stream
    handlers (MLflow, alembic) are muted for the block otherwise."""
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    saved_level = root.level
    muted = [] if verbose else [(handler, handler.level) for name in [None, *logging.root.manager.loggerDict]
                                for handler in logging.getLogger(name).handlers
                                if isinstance(handler, logging.StreamHandler)
                                and not isinstance(handler, logging.FileHandler)]
    for handler, _ in muted:
        handler.setLevel(logging.CRITICAL + 1)
    root.addHandler(file_handler)
    root.setLevel(min(saved_level or logging.INFO, logging.INFO))
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield file_handler
    finally:
        logging.captureWarnings(False)
        root.removeHandler(file_handler)
        root.setLevel(saved_level)
        file_handler.close()
        for handler, level in muted:
            handler.setLevel(level)


class _LogFileText(io.TextIOBase):
    """Text written to stdout/stderr, appended to the log file through its handler's lock.

    It has no file descriptor on purpose: Dagster's compute-log capture then leaves it alone
    instead of redirecting (and closing) the descriptor under it. A logging handler that a
    library created during the run keeps this object: once the log is closed, its text goes
    to the stream it replaced.
    """

    def __init__(self, log_file: logging.StreamHandler, replaced):
        self.log_file = log_file
        self.replaced = replaced

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.log_file.lock:
            stream = self.log_file.stream  # None once the handler is closed
            (stream or self.replaced).write(text)
            (stream or self.replaced).flush()
        return len(text)


@contextmanager
def output_to_log(log_file: logging.StreamHandler, verbose: bool) -> Iterator[None]:
    """What the block writes to stdout and stderr (dbt's lines, which dagster-dbt echoes; libraries' progress
    bars) goes to the log file, unless `verbose`. The progress console keeps the real stdout."""
    if verbose:
        yield
        return
    with redirect_stdout(_LogFileText(log_file, sys.stdout)), redirect_stderr(_LogFileText(log_file, sys.stderr)):
        yield


class StepProgress:
    """Steps done and left of one Dagster run, fed with the run's events (`on_entry`)."""

    def __init__(self, title: str, total_steps: int, log_path: Path, console: Console, verbose: bool = False):
        self.title = title
        self.total_steps = total_steps
        self.log_path = log_path
        self.console = console
        self.live = console.is_terminal and not verbose  # a live bar would fight the --verbose stream for the screen
        self.started = time.perf_counter()
        self.step_started: dict[str, float] = {}
        self.done = 0
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> "StepProgress":
        if self.live:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, redirect_stdout=False,
                                 redirect_stderr=False)
            self._bar.start()
            self._task = self._bar.add_task(self._description(), total=self.total_steps)
        else:
            self.console.print(f"{self.title}: {self.total_steps} steps (log: {self.log_path})", highlight=False)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.title}: finished")
            self._bar.stop()
        if self.done < self.total_steps:
            self.console.print(f"  {self.total_steps - self.done} of {self.total_steps} steps not run: a step they need "
                               f"failed or a gate blocked them (log: {self.log_path})", highlight=False, markup=False)

    def _description(self) -> str:
        running = ", ".join(self.step_started) or "starting"
        return f"{self.title}: {running}"

    def on_event(self, event_type: str, step_key: str | None, message: str) -> None:
        """One Dagster event: a step starts, ends (success, failure, skip), or anything else (ignored)."""
        if step_key is None:
            return
        if event_type == "STEP_START":
            self.step_started[step_key] = time.perf_counter()
        elif event_type in STEP_DONE_EVENTS:
            started = self.step_started.pop(step_key, None)
            self.done += 1
            self.total_steps = max(self.total_steps, self.done)
            took = f" in {time.perf_counter() - started:.1f}s" if started is not None else ""
            if event_type == "STEP_FAILURE":
                self.console.print(f"FAILED step {step_key}{took}: {message}\n  full log: {self.log_path}",
                                   highlight=False, markup=False)
            elif not self.live:
                self.console.print(f"  [{self.done:>2}/{self.total_steps}] {time.perf_counter() - self.started:6.1f}s  "
                                   f"{step_key} {STEP_DONE_EVENTS[event_type]}{took}", highlight=False, markup=False)
        else:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total_steps, description=self._description())

    def on_entry(self, entry) -> None:
        """One event log entry of the run, as the instance stores it (see `operations.launching`)."""
        event = entry.dagster_event
        if event is not None:
            self.on_event(event.event_type_value, event.step_key, step_message(event))


def step_message(event) -> str:
    """A failed step's error: the root cause's message (Dagster wraps it in "Error occurred while
    executing op"), which names the file and line for bad input."""
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return event.message or ""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def entry_logger(handler: logging.Handler):
    """Each event log entry of a run to `handler` (the command's log file), at the entry's level."""

    def log(entry) -> None:
        kind = entry.dagster_event.event_type_value if entry.dagster_event is not None else "LOG"
        handler.handle(logging.makeLogRecord({
            "name": "dagster", "levelno": entry.level, "levelname": logging.getLevelName(entry.level),
            "msg": f"{entry.run_id[:8]} {entry.step_key or '-'} {kind}: {entry.user_message}"}))

    return log


def plain_console() -> Console:
    """stdout for progress lines; rich decides whether it is a terminal."""
    return Console(file=sys.stdout, soft_wrap=True)
