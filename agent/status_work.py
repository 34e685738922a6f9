"""A status request's work: its rows found by key, built in slices charged to the asker.

A request names its rows through an index of the job keys by owner and by name (kept current
by the core's listener calls), so asking about one job, or a job that does not exist, examines
one row, never every job. The reply is built STATUS_SLICE_ROWS rows at a time; each slice is
charged to the asker's budget of rows examined a second (`status_rows_per_second`, root: free),
waits when the budget is spent (counted in cronStatusDeferred), and hands the event loop back,
so other users' events are applied between two slices of anyone's flood of status requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from cronwrap.wrapper.events import MAX_STATUS_REPLY_BYTES, encode_reply

from .config import Config
from .core import AgentCore
from .lifeevents import Deferral, WorkDeferred
from .model import AgentStats, JobKey, JobRecord
from .ratelimit import OwnerBudget
from .views import job_json

STATUS_SLICE_ROWS = 200


class StatusIndex:
    """The job keys by owner and by name: a JobTableListener of the core."""

    def __init__(self) -> None:
        self._by_owner: dict[int, set[str]] = {}
        self._by_name: dict[str, set[int]] = {}

    def job_changed(self, record: JobRecord) -> None:
        key = record.key
        self._by_owner.setdefault(key.owner_uid, set()).add(key.name)
        self._by_name.setdefault(key.name, set()).add(key.owner_uid)

    def job_removed(self, key: JobKey) -> None:
        _discard(self._by_owner, key.owner_uid, key.name)
        _discard(self._by_name, key.name, key.owner_uid)

    def stats_changed(self, stats: AgentStats) -> None:
        pass

    def keys(self, owner: int | None, names: Iterable[str]) -> list[JobKey]:
        """The keys a request covers, in (owner, name) order: `owner`'s jobs (None: every
        owner's), only those named in `names` when it names any."""
        wanted = sorted(set(names))
        if owner is not None:
            mine = self._by_owner.get(owner, set())
            found = [name for name in wanted if name in mine] if wanted else sorted(mine)
            return [JobKey(owner, name) for name in found]
        if wanted:
            found = sorted((uid, name) for name in wanted for uid in self._by_name.get(name, ()))
            return [JobKey(uid, name) for uid, name in found]
        return [JobKey(uid, name) for uid in sorted(self._by_owner)
                for name in sorted(self._by_owner[uid])]


def _discard(index: dict[Any, set[Any]], key: Any, member: Any) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(member)
        if not members:
            del index[key]


class StatusWork:
    """Answers status requests from the index, slice by slice, within each asker's budget."""

    def __init__(self, core: AgentCore, config: Config,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.index = StatusIndex()
        core.add_listener(self.index)
        self._rows = OwnerBudget(config.status_rows_per_second, 1.0, clock)

    async def reply(self, uid: int, names: tuple[str, ...], everyone: bool) -> bytes:
        """The jobs `uid` may see (root, or `everyone`: all), as one reply line of at most
        MAX_STATUS_REPLY_BYTES; jobs that do not fit are left out and counted in "truncated".
        "spool_backlog": the spooled events of the caller (root, `everyone`: of all users)
        still to be applied, when there are any."""
        await self._charge(uid, max(len(set(names)), 1))  # the lookup: a row per name asked
        everyone = everyone or uid == 0
        keys = self.index.keys(None if everyone else uid, names)
        backlog = self.core.spool_backlog
        waiting = sum(backlog.values()) if everyone else backlog.get(uid, 0)
        reply = CappedReply({"spool_backlog": waiting} if waiting else {})
        for start in range(0, len(keys), STATUS_SLICE_ROWS):
            chunk = keys[start:start + STATUS_SLICE_ROWS]
            await self._charge(uid, len(chunk))
            jobs = self.core.jobs()
            for key in chunk:
                job = jobs.get(key)
                if job is not None and not reply.add(job_json(job, self.core.cadence_of(job))):
                    return reply.encode(truncated=len(keys) - reply.kept)
        return reply.encode()

    async def _charge(self, uid: int, rows: int) -> None:
        """Spend `rows` of `uid`'s budget, waiting (counted once) while it is short; either
        way the event loop runs others' work before the slice is built."""
        if uid == 0 or self._rows.take(uid, rows):
            await asyncio.sleep(0)
            return
        self.core.note(WorkDeferred(uid, Deferral.status))
        while not self._rows.take(uid, min(rows, self._rows.capacity)):
            await asyncio.sleep(self._rows.wait(uid, rows))


class CappedReply:
    """A status reply's jobs, added until MAX_STATUS_REPLY_BYTES would be passed."""

    def __init__(self, extra: dict[str, int] | None = None) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.kept = 0
        self.extra = extra or {}
        self._room = MAX_STATUS_REPLY_BYTES - len(encode_reply(
            {"ok": True, "jobs": [], "truncated": 0, **self.extra}))

    def add(self, job: dict[str, Any]) -> bool:
        """Keep `job` if it fits; False when it does not (the reply is full)."""
        size = len(json.dumps(job, separators=(",", ":"), allow_nan=False).encode()) + 1
        if size > self._room:
            return False
        self._room -= size
        self.jobs.append(job)
        self.kept += 1
        return True

    def encode(self, truncated: int = 0) -> bytes:
        if truncated:
            return encode_reply({"ok": True, "jobs": self.jobs, "truncated": truncated,
                                 **self.extra})
        return encode_reply({"ok": True, "jobs": self.jobs, **self.extra})
