"""The event socket: an asyncio Unix server; a small handler object serves each connection."""

from __future__ import annotations

import asyncio
import logging
import pwd
import socket
import struct
import time

from cronwrap.wrapper.events import (
    MAX_MESSAGE_BYTES,
    EventError,
    StatusRequest,
    decode_message,
    encode_reply,
    error_reply,
    ok_reply,
)

from .config import Config
from .core import AgentCore, Rejected, Unavailable, job_json
from .ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

PEERCRED = struct.Struct("3i")


NAME_TTL = 60.0
_names: dict[int, tuple[float, str]] = {}


def owner_name(uid: int) -> str:
    """The user name for `uid` (decimal uid if none), cached for a minute: pwd reads files."""
    now = time.monotonic()
    cached = _names.get(uid)
    if cached is not None and now - cached[0] < NAME_TTL:
        return cached[1]
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    if len(_names) > 10000:
        _names.clear()
    _names[uid] = (now, name)
    return name


def peer_uid(sock: socket.socket) -> int:
    """The connecting process's uid, from the kernel (SO_PEERCRED), never from the message."""
    _pid, uid, _gid = PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
    return uid


class Connection:
    """Serves one client: reads lines, answers each with exactly one reply line."""

    def __init__(self, intake: Intake, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.intake = intake
        self.reader = reader
        self.writer = writer
        self.uid = peer_uid(writer.get_extra_info("socket"))
        self.owner = owner_name(self.uid)

    async def serve(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.intake.config.read_timeout):
                    line = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    await self.reply(self.intake.refuse("truncated", "message without newline"))
                return
            except asyncio.LimitOverrunError:
                problem = f"message exceeds the {MAX_MESSAGE_BYTES}-byte limit"
                await self.reply(self.intake.refuse("oversized", problem))
                return
            except TimeoutError:
                return
            reply = await self.handle(line)
            if reply is None:
                return  # no answer at all: the wrapper spools the event and it is not lost
            await self.reply(reply)

    async def handle(self, line: bytes) -> bytes | None:
        try:
            message = decode_message(line)
        except EventError as exc:
            return self.intake.refuse(f"uid {self.uid}", str(exc))
        if isinstance(message, StatusRequest):
            return self.intake.status(self.uid, message.jobs)
        try:
            await self.intake.core.submit(self.uid, self.owner, message)
        except Unavailable:
            return None
        except Rejected as exc:
            self.intake.limiter.warning(f"uid {self.uid}: {exc}", str(exc))
            return error_reply(str(exc))
        return ok_reply()

    async def reply(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(self.intake.config.read_timeout):
            await self.writer.drain()


class Intake:
    """Accepts connections (at most max_connections at once) and hands each to a Connection."""

    def __init__(self, core: AgentCore, config: Config) -> None:
        self.core = core
        self.config = config
        self.limiter = RateLimitedLog()
        self.active = 0

    async def serve(self, sock: socket.socket) -> None:
        """Serve on an already bound and listening socket until cancelled."""
        server = await asyncio.start_unix_server(self.accept, sock=sock, limit=MAX_MESSAGE_BYTES)
        async with server:
            await server.serve_forever()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.config.max_connections:
            self.limiter.warning("busy", f"{self.active} connections open: refused one")
            writer.close()
            return
        self.active += 1
        try:
            await Connection(self, reader, writer).serve()
        except OSError:  # the client went away or stopped reading: nothing to answer
            pass
        finally:
            self.active -= 1
            writer.close()

    def refuse(self, cause: str, problem: str) -> bytes:
        """A bad message: counted, logged once per cause and interval, answered, nothing changed."""
        self.core.reject()
        self.limiter.warning(cause, problem)
        return error_reply(problem)

    def status(self, uid: int, names: tuple[str, ...]) -> bytes:
        wanted = set(names)
        jobs = [
            job_json(job, self.core.cadence_of(job))
            for key, job in sorted(self.core.jobs().items(),
                                   key=lambda item: (item[0].owner_uid, item[0].name))
            if (uid == 0 or key.owner_uid == uid) and (not wanted or key.name in wanted)
        ]
        return encode_reply({"ok": True, "jobs": jobs})
