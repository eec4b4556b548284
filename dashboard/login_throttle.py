"""Failed dashboard logins slow the next ones down, per client (its address, else its browser session).

The first ``FREE_FAILURES`` failures in a row cost nothing (typos); after that each failure closes the gate to that
client for twice as long as the one before (1 s, 2 s, 4 s, ... up to ``MAX_DELAY_S``), and an attempt made while it
is closed is refused without checking the password. A success clears the count. State lives in the dashboard
process (at most ``max_clients`` entries, least recently seen dropped first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

FREE_FAILURES = 2
MAX_DELAY_S = 60.0


def delay_after(failures: int, free: int = FREE_FAILURES, max_s: float = MAX_DELAY_S) -> float:
    """Seconds the gate stays closed after ``failures`` failed attempts in a row."""
    return 0.0 if failures <= free else min(max_s, 2.0 ** (failures - free - 1))


class LoginThrottle:
    """Consecutive failures and the time until the next attempt is allowed, per client key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000) -> None:
        self._clock = clock
        self.max_clients = max_clients
        self._state: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key → (failures, allowed again at)
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may try again (0.0: now)."""
        with self._lock:
            _, until = self._state.get(key, (0, 0.0))
            return max(0.0, until - self._clock())

    def failed(self, key: str) -> float:
        """Record a failed attempt; returns how long the gate is now closed to ``key``."""
        with self._lock:
            failures = self._state.pop(key, (0, 0.0))[0] + 1
            delay = delay_after(failures)
            self._state[key] = (failures, self._clock() + delay)
            while len(self._state) > self.max_clients:
                self._state.popitem(last=False)
            return delay

    def succeeded(self, key: str) -> None:
        """A correct password: forget the failures of ``key``."""
        with self._lock:
            self._state.pop(key, None)
