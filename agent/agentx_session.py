"""Asyncio AgentX subagent: connects to snmpd, registers a subtree and serves it from a MibView.

Protocol work is sans-IO (agentx_codec for bytes, `RequestHandler` for answers); this module
only moves bytes, keeps the session alive (Ping on absolute monotonic deadlines), reconnects
with back-off and jitter when the master goes away, and forwards notifications as Notify PDUs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

from . import agentx_codec as ax
from .mibview import NO_SUCH_OBJECT, Entry, MibView, Oid
from .snmp_config import parse_agentx_address

log = logging.getLogger(__name__)

SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
NotificationVarbinds = Callable[[Any], tuple[Oid, list[tuple[Oid, Any]]]]


class SessionError(Exception):
    """The master refused us, stopped answering or went away: reconnect."""


def _name(oid: Oid) -> str:
    return ".".join(map(str, oid))


class RequestHandler:
    """Answers the master's requests from a MibView: PDU in, Response bytes (or None) out."""

    def __init__(self, view: MibView, uptime: Callable[[], int]) -> None:
        self.view = view
        self.uptime = uptime

    def handle(self, pdu: ax.PDU) -> bytes | None:
        try:
            return self._answer(pdu)
        except ax.EncodeError as exc:  # a value the view holds cannot go on the wire
            log.error("AgentX: cannot answer %s: %s", pdu.type.name, exc)
            return self._reply(pdu, (), ax.Error.genErr)

    def get_next_frame(self, frame: bytes, net: bool, start: Oid, include: bool,
                       end: Oid) -> bytes | None:
        """The Response to the GetNext `frame`, which ax.single_get_next reduced to one range
        (the walk's hot path: no PDU object); the general path answers anything unusual."""
        try:
            varbind = self._next(start, include, end, net)
        except ax.EncodeError:
            return self.handle(ax.decode(frame))
        return ax.get_next_response(frame, varbind, self.uptime())

    def _answer(self, pdu: ax.PDU) -> bytes | None:
        if isinstance(pdu, ax.CleanupSet):
            return None
        if isinstance(pdu, ax.ContextPDU) and pdu.context is not None:
            return self._reply(pdu, (), ax.Error.unsupportedContext)
        if isinstance(pdu, ax.GetNext):
            net = pdu.network_order
            return self._reply(pdu, [self._next(r.start, r.include, r.end, net)
                                     for r in pdu.ranges])
        if isinstance(pdu, ax.Get):
            return self._reply(pdu, [self._get(r.start, pdu.network_order) for r in pdu.ranges])
        if isinstance(pdu, ax.GetBulk):
            return self._reply(pdu, self._bulk(pdu))
        if isinstance(pdu, ax.TestSet):
            index = 1 if pdu.varbinds else 0
            return self._reply(pdu, (), ax.Error.notWritable, index)
        if isinstance(pdu, ax.CommitSet | ax.UndoSet | ax.Ping):
            # Every TestSet was refused, so there is never anything to commit or undo.
            return self._reply(pdu, ())
        return self._reply(pdu, (), ax.Error.processingError)

    def _reply(self, pdu: ax.PDU, varbinds: Any, error: int = 0, index: int = 0) -> bytes:
        return ax.response_bytes(pdu, varbinds, error, index, self.uptime())

    def _get(self, oid: Oid, net: bool) -> bytes:
        found = self.view.get(oid)
        if isinstance(found, Entry):
            return ax.entry_varbind(found, net)
        missing = rfc1905.noSuchObject if found is NO_SUCH_OBJECT else rfc1905.noSuchInstance
        return ax.encode_varbind(oid, missing, net)

    def _next(self, start: Oid, include: bool, end: Oid, net: bool) -> bytes:
        entry = self.view.get_next(start, include, end or None)
        if entry is None or (end and entry.oid >= end):
            return ax.encode_varbind(start, rfc1905.endOfMibView, net)
        return ax.entry_varbind(entry, net)

    def _bulk(self, pdu: ax.GetBulk) -> list[bytes]:
        """RFC 2741 7.2.3.3: non-repeaters once each, then the repeaters row by row."""
        net = pdu.network_order
        ranges = pdu.ranges
        split = min(pdu.non_repeaters, len(ranges))
        out = [self._next(r.start, r.include, r.end, net) for r in ranges[:split]]
        cursors = [(r.start, r.include, r.end) for r in ranges[split:]]
        for _ in range(pdu.max_repetitions if cursors else 0):
            ended = 0
            for i, (start, include, end) in enumerate(cursors):
                entry = self.view.get_next(start, include, end or None)
                if entry is None or (end and entry.oid >= end):
                    out.append(ax.encode_varbind(start, rfc1905.endOfMibView, net))
                    ended += 1
                else:
                    out.append(ax.entry_varbind(entry, net))
                    cursors[i] = (entry.oid, False, end)
            if ended == len(cursors):
                break
        return out


class Backoff:
    """Exponential reconnect delays with full jitter, reset after a successful Open."""

    def __init__(self, initial: float = 0.2, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.current = initial

    def next_delay(self) -> float:
        delay = random.uniform(self.current / 2, self.current)
        self.current = min(self.current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.current = self.initial


class _Connection(asyncio.Protocol):
    """One stream to the master: answers each PDU as its bytes arrive, correlates our requests.

    A Protocol rather than a StreamReader loop: a request is answered inside data_received,
    with no task wake-up or future per PDU (snmpd sends one GetNext per varbind of a walk).
    When the master stops reading our answers, we stop reading its requests.
    """

    def __init__(self, handler: RequestHandler, timeout: float) -> None:
        self.handler = handler
        self.timeout = timeout
        self.session_id = 0
        self.buffer = ax.AgentXBuffer()
        self.pending: dict[int, asyncio.Future[ax.Response]] = {}
        self.packet_ids = itertools.count(1)
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def request(self, pdu: ax.PDU) -> ax.Response:
        """Send a PDU we originate and wait (bounded) for the master's Response."""
        packet_id = next(self.packet_ids) & 0xFFFFFFFF
        future: asyncio.Future[ax.Response] = asyncio.get_running_loop().create_future()
        self.pending[packet_id] = future
        self.write(ax.encode(_with_ids(pdu, self.session_id, packet_id)))
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            raise SessionError(f"no Response to {pdu.type.name} within {self.timeout:g}s") from None
        finally:
            self.pending.pop(packet_id, None)

    async def read_loop(self) -> None:
        """Serve the master until end-of-file, a Close, or an unusable stream."""
        await self.closed

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.buffer and (quick := ax.single_get_next(data)) is not None:
            answer = self.handler.get_next_frame(data, *quick)  # one read, one walk step
            if answer is not None:
                self.write(answer)
            return
        self.buffer.receive(data)
        try:
            self._dispatch_buffered()
        except SessionError as exc:
            self._end(exc)

    def eof_received(self) -> bool:
        self._end(SessionError("the master closed the connection (end-of-file)"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(SessionError(f"connection to the master lost: {exc}" if exc else
                               "the master closed the connection (end-of-file)"))

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _end(self, exc: SessionError) -> None:
        """The session is over: wake read_loop with `exc`, fail our outstanding requests."""
        if not self.closed.done():
            self.closed.set_exception(exc)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(SessionError("connection to the master lost"))
        self.close()

    def _dispatch_buffered(self) -> None:
        while True:
            try:
                frame = self.buffer.next_frame()
            except ax.PayloadTooLarge as exc:
                raise SessionError(f"dropping the connection: {exc}") from None
            if frame is None:
                return
            quick = ax.single_get_next(frame)
            if quick is not None:
                answer = self.handler.get_next_frame(frame, *quick)
                if answer is not None:
                    self.write(answer)
                continue
            try:
                pdu = ax.decode(frame)
            except ax.ParseError as exc:
                log.warning("AgentX: malformed PDU from the master: %s", exc)
                header = exc.header
                if header is not None and header.type != ax.PduType.response:
                    self.write(ax.response_bytes(header, (), ax.Error.parseError))
                continue
            self._dispatch(pdu)

    def _dispatch(self, pdu: ax.PDU) -> None:
        if isinstance(pdu, ax.Response):
            future = self.pending.get(pdu.packet_id)
            if future is not None and not future.done():
                future.set_result(pdu)
            return
        if isinstance(pdu, ax.Close):
            raise SessionError(f"the master closed the session (reason {pdu.reason})")
        answer = self.handler.handle(pdu)
        if answer is not None:
            self.write(answer)


def _with_ids(pdu: ax.PDU, session_id: int, packet_id: int) -> ax.PDU:
    return replace(pdu, session_id=session_id, packet_id=packet_id)


class AgentXFrontend:
    """Serves `view` under `subtree` through the AgentX master at `address`, until cancelled.

    `notifications` (from NotificationHub.subscribe) is drained into Notify PDUs while a
    session is up; while it is down they wait in the queue (the hub bounds it) and the one
    in flight is kept and sent again after the reconnect.

    `state` says in a few words what the session is doing ("registered with snmpd", "waiting
    for snmpd (Connection refused)"); `on_state` is called whenever it changes. A master that
    stays away is logged once, not at every retry.
    """

    def __init__(
        self, address: str, view: MibView, subtree: Oid,
        notifications: asyncio.Queue[Any] | None,
        notification_varbinds: NotificationVarbinds,
        description: str = "cronwrap-agent", *, timeout: float = 5.0,
        ping_interval: float = 15.0, register_retry: float = 30.0, priority: int = 127,
    ) -> None:
        self.kind, self.host_or_path, self.port = parse_agentx_address(address)
        self.address = address
        self.subtree = tuple(subtree)
        self.notifications = notifications
        self.notification_varbinds = notification_varbinds
        self.description = description
        self.timeout = timeout
        self.ping_interval = ping_interval
        self.register_retry = register_retry
        self.priority = priority
        self.backoff = Backoff()
        self.notifications_sent = 0
        self.sessions_opened = 0
        self.pings_answered = 0
        self.handler = RequestHandler(view, self._uptime)
        self._started = time.monotonic()
        self._registered = asyncio.Event()
        self._connection: _Connection | None = None
        self.state = "connecting to snmpd"
        self.on_state: Callable[[], None] | None = None
        self._waiting = False  # the last attempt failed and that has been logged

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state()

    def _uptime(self) -> int:
        return int((time.monotonic() - self._started) * 100) & 0xFFFFFFFF

    @property
    def registered(self) -> bool:
        """True while a session is open and the subtree is registered."""
        return self._registered.is_set()

    async def wait_registered(self) -> None:
        """Return once a session is open and the subtree is registered."""
        await self._registered.wait()

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_notifications()) if self.notifications else None
        try:
            while True:
                hint = ""
                try:
                    await self._session()
                    reason = "the session ended"
                except (OSError, SessionError, ax.AgentXError) as exc:
                    reason = self._reason(exc)
                    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
                        hint = " (is snmpd running, with `master agentx`?)"
                self._lost(reason, hint)
                delay = self.backoff.next_delay()
                log.debug("AgentX %s: reconnecting in %.1fs", self.address, delay)
                await asyncio.sleep(delay)
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)

    def _reason(self, exc: Exception) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self.timeout:g}s"
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        return str(exc)

    def _lost(self, reason: str, hint: str) -> None:
        """Say once that the master is away; stay quiet while it stays away."""
        self._set_state(f"waiting for snmpd ({reason})")
        if self._waiting:
            log.debug("AgentX %s: still no master: %s", self.address, reason)
            return
        self._waiting = True
        log.warning("AgentX %s: %s%s; retrying every few seconds, logged again once "
                    "registered", self.address, reason, hint)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()

        def protocol() -> _Connection:
            return _Connection(self.handler, self.timeout)

        if self.kind == "unix":
            _, conn = await loop.create_unix_connection(protocol, self.host_or_path)
        else:
            _, conn = await loop.create_connection(protocol, self.host_or_path, self.port)
        return conn

    async def _session(self) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for returns the connect's result (here its
        # error) when a cancellation arrives just as the connect fails, so the cancel was lost.
        async with asyncio.timeout(self.timeout):
            conn = await self._connect()
        tasks = [asyncio.create_task(conn.read_loop()),
                 asyncio.create_task(self._keep_alive(conn))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except asyncio.CancelledError:
            conn.write(ax.encode(ax.Close(session_id=conn.session_id,
                                            reason=ax.CloseReason.shutdown)))
            raise
        finally:
            self._registered.clear()
            self._connection = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            conn.close()

    async def _keep_alive(self, conn: _Connection) -> None:
        """Open, register (retrying a refused registration), then Ping until something fails."""
        opened = await conn.request(ax.Open(timeout=min(int(self.timeout), 255),
                                            description=self.description.encode()))
        if opened.error:
            raise SessionError(f"the master refused Open: {_error_name(opened.error)}")
        conn.session_id = opened.session_id
        self.sessions_opened += 1
        self.backoff.reset()
        await self._register(conn)
        self._connection = conn
        self._registered.set()
        self._waiting = False
        self._set_state("registered with snmpd")
        log.info("AgentX %s: session %d serving %s", self.address, conn.session_id,
                 _name(self.subtree))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ping_interval
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            deadline = max(deadline + self.ping_interval, loop.time())
            pong = await conn.request(ax.Ping())
            if pong.error:
                raise SessionError(f"Ping answered {_error_name(pong.error)}")
            self.pings_answered += 1

    async def _register(self, conn: _Connection) -> None:
        register = ax.Register(subtree=self.subtree, priority=self.priority,
                               timeout=min(int(self.timeout), 255))
        warned = False
        while True:
            answer = await conn.request(register)
            if not answer.error:
                if warned:
                    log.warning("AgentX %s: %s registered after all", self.address,
                                _name(self.subtree))
                return
            if answer.error != ax.Error.duplicateRegistration:
                raise SessionError(f"the master refused to register {_name(self.subtree)}: "
                                   f"{_error_name(answer.error)}")
            if not warned:
                self._set_state("waiting: another subagent has registered CRON-JOBS-MIB")
                log.warning("AgentX %s: %s is already registered by another subagent "
                            "(duplicateRegistration); retrying every %gs", self.address,
                            _name(self.subtree), self.register_retry)
                warned = True
            await asyncio.sleep(self.register_retry)

    async def _send_notifications(self) -> None:
        assert self.notifications is not None
        while True:
            notification = await self.notifications.get()
            try:
                pdu = self._notify_pdu(notification)
            except Exception:  # a bad notification must not stop the sender
                log.exception("AgentX: cannot turn %r into a Notify PDU", notification)
                continue
            await self._deliver(pdu)

    def _notify_pdu(self, notification: Any) -> ax.Notify:
        trap_oid, varbinds = self.notification_varbinds(notification)
        pdu = ax.Notify(varbinds=(
            ax.VarBind(SNMP_TRAP_OID, rfc1902.ObjectIdentifier(trap_oid)),
            *(ax.VarBind(tuple(oid), value) for oid, value in varbinds),
        ))
        ax.encode(pdu)  # refuse an unencodable notification now, not on every retry
        return pdu

    async def _deliver(self, pdu: ax.Notify) -> None:
        """Send until the master answers; a lost session keeps the PDU for the next one."""
        while True:
            await self._registered.wait()
            conn = self._connection
            if conn is None:
                continue
            try:
                answer = await conn.request(pdu)
            except SessionError as exc:
                log.warning("AgentX: notification not acknowledged (%s); will resend", exc)
                conn.close()
                await asyncio.sleep(self.timeout / 10)
                continue
            if answer.error:
                log.warning("AgentX: the master refused a notification: %s",
                            _error_name(answer.error))
            else:
                self.notifications_sent += 1
            return


def _error_name(code: int) -> str:
    try:
        return f"{ax.Error(code).name} ({code})"
    except ValueError:
        return f"error {code}"
