"""The persona chain's windows prepared a day ahead in a worker process are the windows it would prepare itself."""

import numpy as np
import polars as pl

from dagster_project import window_preparer
from dagster_project.science.daily import PersonaSettings, fit_day, memories_for_day, prepare_window
from dagster_project.window_preparer import WindowPreparer


def test_windows_prepared_ahead_in_a_worker_equal_those_prepared_in_process_and_fit_the_same_personas(
        two_persona_events, monkeypatch):
    memories = pl.concat([memories_for_day(day) for day in two_persona_events.partition_by("event_date")])
    days = sorted(memories["event_date"].unique())[2:]
    settings = PersonaSettings()

    def window_of(day):
        return memories.filter(pl.col("event_date") <= day)

    in_process = {day: prepare_window(window_of(day), day, settings) for day in days}
    assert not WindowPreparer(days, window_of, settings, largest_window=memories.height).ahead  # a small range
    monkeypatch.setattr(window_preparer, "PREPARE_AHEAD_MIN_MEMORIES", 0)
    with WindowPreparer(days, window_of, settings, largest_window=memories.height) as preparer:
        assert preparer.ahead
        ahead = {day: preparer.prepared(day) for day in days}

    for day in days:
        mine, theirs = in_process[day], ahead[day]
        assert theirs.window.equals(mine.window)
        assert np.array_equal(theirs.weights, mine.weights)
        assert (theirs.vectors != mine.vectors).nnz == 0 and theirs.vectors.shape == mine.vectors.shape
        assert (theirs.presence[0] != mine.presence[0]).nnz == 0
        assert list(theirs.presence[1]) == list(mine.presence[1])
        assert theirs.vectorizer.words.vocabulary_ == mine.vectorizer.words.vocabulary_
    last = days[-1]
    fitted_here = fit_day(window_of(last), last, None, 1, settings)
    fitted_ahead = fit_day(window_of(last), last, None, 1, settings, prepared=ahead[last])
    assert fitted_ahead.personas.equals(fitted_here.personas)
    assert fitted_ahead.user_personas.equals(fitted_here.user_personas)


def test_when_the_worker_dies_the_rest_of_the_range_is_prepared_in_process(two_persona_events, monkeypatch):
    import multiprocessing

    memories = pl.concat([memories_for_day(day) for day in two_persona_events.partition_by("event_date")])
    days = sorted(memories["event_date"].unique())[2:]
    assert len(days) >= 3
    settings = PersonaSettings()

    def window_of(day):
        return memories.filter(pl.col("event_date") <= day)

    monkeypatch.setattr(window_preparer, "PREPARE_AHEAD_MIN_MEMORIES", 0)
    with WindowPreparer(days, window_of, settings, largest_window=memories.height) as preparer:
        preparer.prepared(days[0])  # the worker now prepares days[1]
        for worker in multiprocessing.active_children():
            worker.kill()
            worker.join()
        prepared = {day: preparer.prepared(day) for day in days[1:]}
        assert not preparer.ahead
    for day, theirs in prepared.items():
        mine = prepare_window(window_of(day), day, settings)
        assert theirs.window.equals(mine.window)
        assert (theirs.vectors != mine.vectors).nnz == 0 and theirs.vectors.shape == mine.vectors.shape
