"""Delivering events to the local agent over its Unix socket, else spooling them."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from cronwrap.wrapper.errors import WrapperError
from cronwrap.wrapper.events import Event

if TYPE_CHECKING:
    from cronwrap.wrapper.spool import Spool

DEFAULT_SOCKET = "/run/cronwrap/agent.sock"
DELIVERY_BUDGET = 1.0  # seconds a whole run may spend talking to the agent
MAX_REPLY_BYTES = 64 * 1024
SHUT_RD = 0  # socket.SHUT_RD (importing socket costs every run a few ms)


class Rejected(Exception):
    """The agent answered {"ok": false, "error": ...}: the event would be rejected again."""


class TransportError(Exception):
    """No usable reply (no agent, refused, slow, closed, garbled): the event should be spooled.

    `sent`: the whole line was sent, so the agent may have applied it (its reply was lost): the
    event is spooled as a retry, which the agent drains first (docs/protocol.md, Exactly once).
    """

    def __init__(self, problem: str, sent: bool = False) -> None:
        super().__init__(problem)
        self.sent = sent


def deliver(socket_path: str, wire: bytes, timeout: float) -> None:
    """Send one wire line and wait at most `timeout` seconds for the agent's one-line reply."""
    import _socket  # the C module: `socket` would cost a few ms of enum set-up on every run

    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sent = False
    reply = b""
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(wire)
        sent = True
        while not reply.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or len(reply) > MAX_REPLY_BYTES:
                raise TransportError("no complete reply in time", sent)
            sock.settimeout(left)
            chunk = sock.recv(4096)
            if not chunk:
                raise TransportError("agent closed the connection without replying", sent)
            reply += chunk
    except (OSError, TransportError) as exc:
        reply += _last_reply(sock) if sent else b""
        if not reply.endswith(b"\n"):
            problem = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
            raise TransportError(problem, sent) from None
    finally:
        sock.close()
    _check_reply(reply, sent)


def _last_reply(sock: Any) -> bytes:
    """What reply the agent queued before this wrapper stopped reading, which it does first
    (shutdown SHUT_RD): a reply queued after that fails on the agent's side (EPIPE), so the
    agent knows whether this wrapper will spool a retry (docs/protocol.md, Exactly once)."""
    try:
        sock.shutdown(SHUT_RD)
        sock.setblocking(False)
        return sock.recv(MAX_REPLY_BYTES)
    except OSError:  # nothing queued, or the connection is gone
        return b""


def _check_reply(reply: bytes, sent: bool) -> None:
    try:
        answer = json.loads(reply)
    except ValueError:
        raise TransportError("agent sent a reply that is not JSON", sent) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise TransportError("agent sent a reply without an 'ok' field", sent)
    if not answer["ok"]:
        if answer.get("reason") == "busy":  # over a per-user limit: spooled, applied later
            raise TransportError(str(answer.get("error", "agent busy"))[:300])
        raise Rejected(str(answer.get("error", "no reason given"))[:300])


class Reporter:
    """Reports a run's events: to the agent within a shared time budget, else to the spool."""

    def __init__(self, socket_path: str, spool_root: str, uid: int) -> None:
        self.socket_path = socket_path
        self.spool_root = spool_root
        self.uid = uid
        self._budget_left = DELIVERY_BUDGET  # seconds of talking to the agent, not of the run
        self._spool_warned = False
        self._spool_dir: Spool | None = None  # one per run: a fallback dir is made at most once

    def report(self, event: Event) -> None:
        """Never raises and never blocks past the budget: problems become one stderr line."""
        wire = event.to_wire()
        retry = False
        if self._budget_left > 0:  # a missing agent fails at once; a slow one uses up the budget
            began = time.monotonic()
            try:
                deliver(self.socket_path, wire, self._budget_left)
                return
            except Rejected as exc:
                _warn(f"the agent rejected the {event.KIND} event for job {event.job!r}: {exc}")
                return
            except TransportError as exc:
                retry = exc.sent
            finally:
                self._budget_left -= time.monotonic() - began
        self._spool(event, wire, retry)

    def _spool(self, event: Event, wire: bytes, retry: bool) -> None:
        from cronwrap.wrapper.spool import Spool  # only needed when the agent is unreachable

        if self._spool_dir is None:
            self._spool_dir = Spool(self.spool_root, self.uid)
        try:
            self._spool_dir.write(event.id, wire, retry)
        except (OSError, WrapperError) as exc:
            if not self._spool_warned:
                self._spool_warned = True
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                _warn(f"warning: cannot spool events under {self.spool_root}: {reason}")


def _warn(message: str) -> None:
    sys.stderr.write(f"cronwrap: {message}\n")
    sys.stderr.flush()

