"""Deletions handed to the background during a run of builds are all done when the run ends."""

from __future__ import annotations

import threading

import pytest

from storekit.errors import StoreError
from storekit.store.deferred import deferred_deletions, later


def test_outside_a_run_the_job_runs_at_once() -> None:
    ran: list[str] = []
    later(lambda: ran.append(threading.current_thread().name))
    assert ran == [threading.current_thread().name]


def test_inside_a_run_jobs_run_elsewhere_and_are_done_at_its_end() -> None:
    gate = threading.Event()
    ran: list[str] = []

    def job() -> None:
        gate.wait(10)
        ran.append(threading.current_thread().name)

    with deferred_deletions():
        later(job)
        later(job)
        assert ran == []  # the caller did not wait for them
        gate.set()
    assert ran == ["storekit-deletions", "storekit-deletions"]


def test_nested_runs_share_the_worker_and_the_outer_one_waits() -> None:
    ran: list[int] = []
    with deferred_deletions():
        with deferred_deletions():
            later(lambda: ran.append(1))
        later(lambda: ran.append(2))
    assert ran == [1, 2]


def test_a_failed_job_is_raised_when_the_run_ends() -> None:
    def fail() -> None:
        raise StoreError("could not delete x")

    with pytest.raises(StoreError, match="could not delete x"), deferred_deletions():
        later(fail)


def test_an_error_of_the_run_itself_wins() -> None:
    def fail() -> None:
        raise StoreError("could not delete x")

    with pytest.raises(KeyError), deferred_deletions():
        later(fail)
        raise KeyError("the run's own error")
