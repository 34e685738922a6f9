"""Rate limits: log lines bounded per cause and interval, and per-owner notification budgets."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("cronwrap.agent")

OTHER_CAUSES = "other causes"


class RateLimitedLog:
    """Logs each distinct cause at most once per `interval` seconds, with a suppressed count.

    At most `max_causes` causes are tracked at once; further causes share one line, so a flood
    of distinct causes (junk files, random source addresses) still writes a bounded log.
    """

    def __init__(self, what: str = "rejected event", interval: float = 60.0,
                 max_causes: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.interval = interval
        self.max_causes = max_causes
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, cause: str, detail: str) -> None:
        now = self._clock()
        self._forget_quiet_causes(now)
        if cause not in self._last and len(self._last) >= self.max_causes:
            cause, detail = OTHER_CAUSES, f"{cause}: {detail}"
        last, suppressed = self._last.get(cause, (now - self.interval, 0))
        if now - last < self.interval:
            self._last[cause] = (last, suppressed + 1)
            return
        self._last[cause] = (now, 0)
        more = f" ({suppressed} more since last logged)" if suppressed else ""
        log.warning("%s: %s: %s%s", self.what, cause, detail, more)

    def _forget_quiet_causes(self, now: float) -> None:
        """Drop causes logged over an interval ago with nothing suppressed since."""
        if len(self._last) < self.max_causes:
            return
        self._last = {cause: entry for cause, entry in self._last.items()
                      if entry[1] or now - entry[0] < self.interval}


class OwnerBudget:
    """A token bucket per owner: `capacity` tokens, refilled evenly over `period` seconds."""

    MAX_OWNERS = 10000

    def __init__(self, capacity: int, period: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._rate = capacity / period
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # owner -> (tokens, when)

    def take(self, owner: int) -> bool:
        """Spend one of `owner`'s tokens; False when none is left."""
        now = self._clock()
        tokens, when = self._buckets.get(owner, (float(self.capacity), now))
        tokens = min(float(self.capacity), tokens + (now - when) * self._rate)
        if len(self._buckets) >= self.MAX_OWNERS:
            self._forget_full_buckets(now)
        if tokens < 1.0:
            self._buckets[owner] = (tokens, now)
            return False
        self._buckets[owner] = (tokens - 1.0, now)
        return True

    def _forget_full_buckets(self, now: float) -> None:
        """A bucket that has refilled is the same as no bucket: drop those."""
        self._buckets = {owner: (tokens, when) for owner, (tokens, when) in self._buckets.items()
                         if tokens + (now - when) * self._rate < self.capacity}
