"""The event socket: an asyncio Unix server; a small handler object serves each connection.

One local user must not be able to starve another: connections are capped per uid as well as
in total, status replies are capped in size, each uid's status replies are written one at a
time and paced in bytes per second, and a reply the client does not read in time is dropped
with the connection (never left buffered).  Root's connections are capped by nothing but the
file descriptor limit, so root's wrappers and checks stay live under any user's flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

from cronwrap.wrapper.events import (
    MAX_MESSAGE_BYTES,
    EventError,
    StatusRequest,
    decode_message,
    error_reply,
    ok_reply,
)
from cronwrap.wrapper.life_messages import ForgetRequest, LifeRequest, PauseRequest

from ..config import Config
from ..core import AgentCore, NoSuchJob, Rejected, RowRefused, Unavailable
from ..lifeevents import Deferral, WorkDeferred
from ..model import JobKey
from ..owners import owner_name
from ..ratelimit import OwnerBudget, RateLimitedLog
from ..status_access import StatusAccess
from ..status_work import StatusWork
from ..views import job_json

log = logging.getLogger(__name__)

PEERCRED = struct.Struct("3i")
# Python 3.13 (Debian 13) unlinks a Unix server's socket file when the server closes; the file is
# systemd's (cronwrap-agent.socket listens on it across agent restarts), or a stale one the next
# start replaces: an agent that stops must leave it, or wrappers find no socket until a reboot.
KEEP_SOCKET_FILE = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
BUSY = "busy"  # a refusal's reason: try again later; the wrapper spools the event
EVENT_BURST_SECONDS = 10  # a user may send this many seconds' worth of events at once


def peer_uid(sock: socket.socket) -> int:
    """The connecting process's uid, from the kernel (SO_PEERCRED), never from the message."""
    _pid, uid, _gid = PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
    return uid


class Connection:
    """Serves one client: reads lines, answers each with exactly one reply line."""

    def __init__(self, intake: Intake, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, uid: int) -> None:
        self.intake = intake
        self.reader = reader
        self.writer = writer
        self.uid = uid
        self.owner = owner_name(uid)

    async def serve(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.intake.config.read_timeout):
                    line = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    await self.reply(self.intake.refuse(self.uid, "truncated",
                                                        "message without newline"))
                return
            except asyncio.LimitOverrunError:
                problem = f"message exceeds the {MAX_MESSAGE_BYTES}-byte limit"
                await self.reply(self.intake.refuse(self.uid, "oversized", problem))
                return
            except TimeoutError:
                return
            reply = await self.handle(line)
            if reply is None:
                return  # no answer at all: the wrapper spools the event and it is not lost
            if reply:
                await self.reply(reply)

    async def handle(self, line: bytes) -> bytes | None:
        try:
            message = decode_message(line)
        except EventError as exc:
            return self.intake.refuse(self.uid, "malformed message", str(exc))
        if isinstance(message, StatusRequest):
            everyone = self.intake.access.sees_every_job(self.uid,
                                                         self.writer.get_extra_info("socket"))
            async with self.intake.peers.status_turn(self.uid):
                reply = await self.intake.status.reply(self.uid, message.jobs, everyone)
                await self.intake.peers.pace(self.uid, len(reply))
                await self.reply(reply)
            return b""
        if isinstance(message, LifeRequest):
            return await self.intake.life(self.uid, message)
        refusal = self.deferral()
        if refusal is not None:
            self.intake.core.note(refusal)
            return error_reply(f"agent busy: {refusal.why}; spool the event, it is applied "
                               "later", BUSY)
        try:
            applied = await self.intake.core.submit(self.uid, self.owner, message)
        except Unavailable:
            return None
        except Rejected as exc:
            if not isinstance(exc, RowRefused):  # the core logs those itself
                self.intake.limiter.warning(exc.cause, f"uid {self.uid}: {exc}", self.uid)
            return error_reply(str(exc))
        if not applied:  # the late line of a retry the drain applied first: both copies came
            self.intake.core.settle(self.uid, [message.id])
        await self.reply(ok_reply())  # raises when the wrapper stopped reading: still in doubt
        if applied:  # the reply is in the wrapper's socket: it will not spool a retry
            self.intake.core.settle(self.uid, [message.id])
        return b""

    def deferral(self) -> WorkDeferred | None:
        """Why the user's event must wait (None: it need not): over its rate, or with
        event_ids_per_owner applied events whose retry may still come (eventids)."""
        over_rate = self.intake.peers.over_event_budget(self.uid)
        if over_rate is not None:
            return WorkDeferred(self.uid, Deferral.event, over_rate)
        if not self.intake.core.ids_in_doubt_full(self.uid):
            return None
        return WorkDeferred(self.uid, Deferral.event_in_doubt, (
            f"uid {self.uid} has {self.intake.config.event_ids_per_owner} events whose retry "
            "may still come (event_ids_per_owner)"))

    async def reply(self, data: bytes) -> None:
        """Write one reply; a client that does not take it within read_timeout is cut off."""
        self.writer.write(data)
        try:
            async with asyncio.timeout(self.intake.config.read_timeout):
                await self.writer.drain()
        except TimeoutError:
            self.writer.transport.abort()  # close() would keep the unread reply buffered
            raise ConnectionAbortedError("client did not read its reply") from None


class PeerLimits:
    """Per-uid budgets: open connections, and status replies (one at a time, bytes/second)."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self.open: Counter[int] = Counter()
        self.unprivileged = 0
        self._status_locks: dict[int, asyncio.Lock] = {}
        self._paced_until: dict[int, float] = {}
        rate = config.events_per_second_per_owner
        self._events = OwnerBudget(rate * EVENT_BURST_SECONDS, EVENT_BURST_SECONDS, clock)

    def over_event_budget(self, uid: int) -> str | None:
        """Why an event of `uid` is refused now (over events_per_second_per_owner, with a
        burst of EVENT_BURST_SECONDS' worth), None to take it; root is never refused."""
        if uid == 0 or self._events.take(uid):
            return None
        return (f"uid {uid} sent more than {self.config.events_per_second_per_owner} events a "
                "second (events_per_second_per_owner)")

    def refusal(self, uid: int) -> str | None:
        """Why a new connection from `uid` is refused, or None to admit it."""
        if uid == 0:
            return None
        if self.open[uid] >= self.config.max_connections_per_uid:
            return f"uid {uid} has {self.open[uid]} connections open (the per-user limit)"
        if self.unprivileged >= self.config.max_connections:
            return f"{self.unprivileged} connections open (the limit for all non-root users)"
        return None

    def opened(self, uid: int) -> None:
        self.open[uid] += 1
        self.unprivileged += uid != 0

    def closed(self, uid: int) -> None:
        self.open[uid] -= 1
        self.unprivileged -= uid != 0
        if not self.open[uid]:
            del self.open[uid]
            self._status_locks.pop(uid, None)

    @contextlib.asynccontextmanager
    async def status_turn(self, uid: int) -> AsyncIterator[None]:
        """Each uid's status replies are built and written one at a time."""
        lock = self._status_locks.setdefault(uid, asyncio.Lock())
        async with lock:
            yield

    async def pace(self, uid: int, size: int) -> None:
        """Delay a non-root reply so each uid gets at most status_bytes_per_second on average."""
        if uid == 0:
            return
        now = self._clock()
        start = max(now, self._paced_until.get(uid, now))
        self._paced_until[uid] = start + size / self.config.status_bytes_per_second
        if len(self._paced_until) > 10000:
            self._paced_until = {u: t for u, t in self._paced_until.items() if t > now}
        if start > now:
            await asyncio.sleep(start - now)


class Intake:
    """Accepts connections within the per-uid and total limits; a Connection serves each."""

    def __init__(self, core: AgentCore, config: Config) -> None:
        self.core = core
        self.config = config
        self.limiter = RateLimitedLog()
        self.peers = PeerLimits(config)
        self.access = StatusAccess(config.status_group)
        self.refusals = RateLimitedLog("refused request")
        self.status = StatusWork(core, config)

    async def serve(self, sock: socket.socket) -> None:
        """Serve on an already bound and listening socket until cancelled."""
        server = await asyncio.start_unix_server(self.accept, sock=sock, limit=MAX_MESSAGE_BYTES,
                                                 **KEEP_SOCKET_FILE)
        async with server:
            await server.serve_forever()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
        except OSError:
            writer.transport.abort()
            return
        refusal = self.peers.refusal(uid)
        if refusal is not None:
            self.limiter.warning("busy", f"{refusal}: refused a connection", uid)
            writer.write(error_reply(f"agent busy: {refusal}", BUSY))
            writer.close()
            return
        self.peers.opened(uid)
        try:
            await Connection(self, reader, writer, uid).serve()
        except OSError:  # the client went away or stopped reading: nothing to answer
            pass
        finally:
            self.peers.closed(uid)
            writer.close()

    def refuse(self, uid: int, cause: str, problem: str) -> bytes:
        """A bad message: counted, logged once per uid, cause and interval, answered, nothing
        changed."""
        self.core.reject()
        self.limiter.warning(cause, f"uid {uid}: {problem}", uid)
        return error_reply(problem)

    async def life(self, uid: int, request: LifeRequest) -> bytes:
        """forget, pause, resume: the caller's own job; another user's only for root.  The
        caller is the socket peer's uid (SO_PEERCRED); nothing in the message can change that,
        and a refusal says nothing about whether the other user's job exists."""
        owner_uid = uid if request.owner_uid is None else request.owner_uid
        requester = owner_name(uid)
        if uid != 0 and owner_uid != uid:
            self.refusals.warning(request.KIND,
                                  f"uid {uid} ({requester}) asked to {request.KIND} job "
                                  f"{request.job!r} "
                                  f"of uid {owner_uid}: only root may", uid)
            return error_reply(f"permission denied: {requester} (uid {uid}) may {request.KIND} "
                               "only its own jobs; other users' jobs need root", "denied")
        key = JobKey(owner_uid, request.job)
        try:
            if isinstance(request, ForgetRequest):
                job = await self.core.forget(key, requester)
                return ok_reply(forgotten=job_json(job, job.cadence))
            if isinstance(request, PauseRequest):
                job = await self.core.pause(key, request.seconds, requester)
                return ok_reply(job=job_json(job, self.core.cadence_of(job)))
            job, was_paused = await self.core.resume(key, requester)
            return ok_reply(job=job_json(job, self.core.cadence_of(job)), was_paused=was_paused)
        except NoSuchJob:
            return error_reply(f"no job named {request.job} of {owner_name(owner_uid)} "
                               f"(uid {owner_uid})", "not-found")
        except Unavailable:
            return error_reply("the agent cannot store the change now (see its log); "
                               "nothing changed", "unavailable")
