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
