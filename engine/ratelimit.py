"""An in-process request budget per key (a client address, a case number) with bounded memory.

Each key keeps two counts — this window's and the previous one's — and the budget is judged on
their sliding-window estimate (the previous count weighted by how much of it still overlaps the
last ``window`` seconds). That is O(1) memory per key, whatever the budget: the old limiter kept
a timestamp per request and never forgot a key (20,000 clients held about 19 MB).

Memory is bounded twice: a key idle for two windows is forgotten (its counts could no longer
matter), and at most ``max_keys`` keys are kept — the least recently seen one is evicted first.
Eviction resets that key's budget; a flood of distinct keys big enough to cause it comes from
that many distinct clients, each of which had a budget of its own anyway, and the budget that
protects one case's query code is kept in the database (``engine.query_guard``), not here.

One instance per server process: with N workers a client's budget is N times the setting (the
durable per-case budget is not multiplied).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class _Entry:
    __slots__ = ("locked_until", "previous", "seen", "started", "current")

    def __init__(self, started: float) -> None:
        self.started, self.previous, self.current = started, 0, 0
        self.seen, self.locked_until = started, 0.0


class BoundedWindows:
    """Sliding-window counts per key; ``hit`` answers whether a request fits its budget."""

    def __init__(self, window: float = 60.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.max_keys, self.clock = float(window), max(1, max_keys), clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently seen first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def hit(self, key: str, limit: int, lockout: float | None = None) -> float | None:
        """Count one request for ``key``. None when it fits ``limit`` per window; else the seconds
        until the key may try again (for ``Retry-After``). With ``lockout``, a key that reaches
        its limit is refused for that many seconds (the request that reached it still counts)."""
        with self._lock:
            now = self.clock()
            self._forget(now)
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(now)
                while len(self._entries) > self.max_keys:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            entry.seen = max(entry.seen, now)
            if entry.locked_until > now:
                return entry.locked_until - now
            self._roll(entry, now)
            if self._estimate(entry, now) >= limit:
                return self._wait(entry, now, limit)
            entry.current += 1
            if lockout is not None and self._estimate(entry, now) >= limit:
                entry.locked_until = now + lockout
                entry.previous = entry.current = 0
                entry.seen = max(now, entry.locked_until - self.window)  # kept until the lock is over
            return None

    def locked_for(self, key: str) -> float | None:
        """Seconds the key is still locked out, else None (counts nothing)."""
        with self._lock:
            entry = self._entries.get(key)
            now = self.clock()
            return entry.locked_until - now if entry is not None and entry.locked_until > now else None

    def _forget(self, now: float) -> None:
        # The oldest-seen entries are at the front: stop at the first one still recent.
        horizon = now - 2 * self.window
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest.seen >= horizon:
                break
            self._entries.popitem(last=False)

    def _roll(self, entry: _Entry, now: float) -> None:
        elapsed = now - entry.started
        if elapsed < self.window:
            return
        windows = int(elapsed // self.window)
        entry.previous = entry.current if windows == 1 else 0
        entry.current = 0
        entry.started += windows * self.window

    def _estimate(self, entry: _Entry, now: float) -> float:
        overlap = 1.0 - (now - entry.started) / self.window
        return entry.previous * overlap + entry.current

    def _wait(self, entry: _Entry, now: float, limit: int) -> float:
        """Seconds until the estimate drops below ``limit`` (the previous window fading out, and
        if this window alone is over it, this one fading in the next)."""
        left = entry.started + self.window - now
        if entry.current < limit:
            # previous * (left - d) / window + current < limit
            d = left - (limit - entry.current) * self.window / max(entry.previous, 1)
            return max(1.0, d)
        # Next window: current * (1 - t / window) < limit
        return max(1.0, left + self.window * (1 - limit / entry.current))


def retry_after(seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header (never 0: that invites an immediate retry)."""
    return max(1, math.ceil(seconds))
