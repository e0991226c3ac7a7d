"""When a pull-through cache stops asking an upstream that keeps failing: a circuit breaker per upstream.

Without it, an upstream that is down costs every narinfo request its failure again: a refused
connection is quick, but a host that does not answer costs the whole timeout, request after
request, and a leaf whose middle cache died would answer each client that late. After `threshold`
failures in a row (any reason the upstream is dropped for a request: unreachable, a hang, a
truncated or tampered body, a bad signature), the upstream is skipped for `cooldown` seconds; then
one request tries it again (the others keep skipping it meanwhile). A success (or a clean "not
here") closes the breaker; another failure opens it again for twice as long, up to `max_cooldown`.
Skipping an upstream only ever costs a miss there: the next upstream is asked as before, and
nothing unverified is served either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Failures in a row before an upstream is skipped, and the first pause (seconds); each failed try
#: after a pause doubles it, up to the last.
THRESHOLD = 3
COOLDOWN_S = 10.0
MAX_COOLDOWN_S = 300.0


class Breaker:
    """One upstream's record of failures; thread-safe (the fetches run on a pool)."""

    def __init__(
        self,
        threshold: int = THRESHOLD,
        cooldown: float = COOLDOWN_S,
        max_cooldown: float = MAX_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold, self.first_cooldown, self.max_cooldown = max(1, threshold), cooldown, max_cooldown
        self.clock = clock
        self._guard = threading.Lock()
        self._failures = 0
        self._cooldown = cooldown
        self._until: float | None = None  # skipped until then (None: closed)
        self._trying = False  # the one request let through after a pause is under way

    @property
    def failures(self) -> int:
        """Failed requests since the last success."""
        return self._failures

    def allow(self) -> bool:
        """Whether this request should ask the upstream (True obliges a `succeeded`/`failed`/`done`)."""
        with self._guard:
            if self._until is None:
                return True
            if self._trying or self.clock() < self._until:
                return False
            self._trying = True
            return True

    def succeeded(self) -> None:
        with self._guard:
            self._failures, self._cooldown, self._until, self._trying = 0, self.first_cooldown, None, False

    def failed(self) -> float | None:
        """Count a failure; the seconds the upstream is now skipped for, when this opens the breaker."""
        with self._guard:
            self._failures += 1
            if self._trying:  # the try after a pause failed: a longer pause
                self._trying = False
                self._cooldown = min(self._cooldown * 2, self.max_cooldown)
            elif self._failures < self.threshold or self._until is not None:
                return None
            self._until = self.clock() + self._cooldown
            return self._cooldown

    def done(self) -> None:
        """Neither: the request ended for a reason that is not the upstream's (this server's own)."""
        with self._guard:
            self._trying = False
