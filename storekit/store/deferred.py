"""Deleting scratch directories off the critical path of a run of builds.

Removing a directory is slow on some file systems (ext4 mounted with `discard` frees the inode and
trims its blocks when the last descriptor closes: a few milliseconds per directory on a virtual
disk). A build makes a build dir and a staging dir and deletes both when it ends; in a chain of
builds each one waited for the previous one's deletions. Inside `deferred_deletions()` (the build
workflow opens it around a run), `later(job)` hands a deletion to one background thread instead, and
the context waits for every handed-over job before it returns, so nothing is left when the run ends.

The caller keeps the directory flocked until its job has deleted it (the job closes the descriptor
last), so another process never takes a directory being deleted for a leftover of a killed one.
Outside the context `later` runs the job at once: library callers that open no context see the
plain behaviour. The first error a job raises is raised again when the context closes, unless
something else is already propagating.
"""

from __future__ import annotations

import _thread
import contextlib
from collections.abc import Callable, Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue

Job = Callable[[], None]


class _Worker:
    def __init__(self) -> None:
        import queue  # here: every local store imports this module, and few runs delete in the background
        import threading

        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="storekit-deletions", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                job()
            except BaseException as e:  # kept for the context's exit
                self.errors.append(e)

    def finish(self) -> list[BaseException]:
        self.jobs.put(None)
        self.thread.join()
        return self.errors


_lock = _thread.allocate_lock()  # `threading` only once a worker starts (see _Worker)
_worker: _Worker | None = None
_users = 0


@contextlib.contextmanager
def deferred_deletions() -> Iterator[None]:
    """While open (in any thread of the process), `later` runs jobs in the background; waits for
    them all on exit. Nested or concurrent contexts share one worker, finished by the last to close."""
    global _worker, _users
    with _lock:
        if _worker is None:
            _worker = _Worker()
        _users += 1
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        errors: list[BaseException] = []
        with _lock:
            _users -= 1
            if _users == 0 and _worker is not None:
                worker, _worker = _worker, None
                errors = worker.finish()
        if errors and not failed:
            raise errors[0]


def later(job: Job) -> None:
    """Run `job` on the background worker if a `deferred_deletions()` is open, else now."""
    with _lock:
        worker = _worker
        if worker is not None:
            worker.jobs.put(job)
            return
    job()
