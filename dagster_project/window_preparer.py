"""Each next day's window prepared in a worker process while the persona chain fits the day before.

A day's fit starts with work that needs its window only (`science.daily.prepare_window`: the
vectoriser fitted on the window, its vectors, the words of every memory), about a third to a half
of the fit on large windows; the rest needs the day before (persona ids, labels, lineage). Over a
range of large windows one spawned worker prepares day D + 1 while the step's process fits day D,
so the chain waits only for the part that is a chain: 8 days of 30,000 events took 70.1 s instead
of 94.8 s, with the same personas (docs/performance.md). Smaller windows are prepared in the step's
own process: the worker's start-up (importing Polars, scikit-learn and the science, 2-4 s) would
cost more than it saves.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date

import polars as pl

from dagster_project.processes import freeze_imports
from dagster_project.science.daily import WINDOW_ORDER, PersonaSettings, PreparedWindow, prepare_window

PREPARE_AHEAD_MIN_MEMORIES = 20_000  # the largest window of the range, below which a worker does not pay


class WindowPreparer:
    """`prepared(day)` for the days to fit, in date order; with a worker when the windows are large.

    `window_of(day)` gives a day's window (a filter of the range's memories, so only the windows in
    use are held); `largest_window` decides whether a worker is worth starting. The first day is
    prepared here while the worker starts on the second; if the worker dies, the rest are prepared here.
    Leaving the `with` block cancels what the worker has not started and waits for what it has.
    """

    def __init__(self, days: list[date], window_of: Callable[[date], pl.DataFrame], settings: PersonaSettings,
                 largest_window: int) -> None:
        self._days = days
        self._window_of = window_of
        self._settings = settings
        self._ahead = len(days) >= 2 and largest_window >= PREPARE_AHEAD_MIN_MEMORIES
        self._worker: ProcessPoolExecutor | None = None
        self._pending: dict[date, Future] = {}

    def __enter__(self) -> WindowPreparer:
        return self

    @property
    def ahead(self) -> bool:
        """Whether a worker prepares the next windows."""
        return self._ahead

    def __exit__(self, *_exc) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def prepared(self, day: date) -> PreparedWindow:
        """`prepare_window` of `day`, after asking the worker for the next day to fit."""
        if self._ahead:
            try:
                return self._from_worker(day)
            except BrokenProcessPool:  # the worker died (out of memory?): this day and the rest are prepared here
                self._ahead = False
        return prepare_window(self._window_of(day), day, self._settings)

    def _from_worker(self, day: date) -> PreparedWindow:
        """The worker's `prepare_window` of `day` (the first day's is prepared here) once the next day is queued;
        raises `BrokenProcessPool` when the worker has died, at the queueing or at the wait."""
        if self._worker is None:
            self._worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_start_worker)
        later = [other for other in self._days if other > day]
        if later and later[0] not in self._pending:
            self._pending[later[0]] = self._worker.submit(
                _prepare_in_worker, self._window_of(later[0]), later[0], self._settings)
        if day not in self._pending:
            return prepare_window(self._window_of(day), day, self._settings)
        # The worker sends back what it computed, not the window this process already holds.
        return dataclasses.replace(self._pending.pop(day).result(), window=self._window_of(day).sort(*WINDOW_ORDER))


def _start_worker() -> None:
    """Run in the worker, which imported this module (and with it the science) to find this function."""
    freeze_imports()


def _prepare_in_worker(window: pl.DataFrame, day: date, settings: PersonaSettings) -> PreparedWindow:
    """`prepare_window` without the window, then the day's scratch memory handed back to the system: glibc keeps
    the blocks NumPy and SciPy freed (the n-gram counts) for reuse, and a worker that held each window's largest
    moment would add it to the run's peak."""
    prepared = dataclasses.replace(prepare_window(window, day, settings), window=pl.DataFrame())
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except AttributeError:  # not glibc
        pass
    return prepared
