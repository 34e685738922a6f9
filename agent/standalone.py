"""The standalone SNMP agent: pysnmp 7 answers reads from a MibView and sends notifications.

`StandaloneFrontend.run()` binds the --listen addresses, configures communities (each limited to
source networks), USM users and notification targets from an `SnmpConfig`, and serves until
cancelled.  Every read goes to one ordered view (the SNMPv2-MIB system group followed by the
cronwrap subtree) through standalone_read's `ViewInstrumentation`, so a GETNEXT is a bisect,
never a scan of pysnmp's generic MIB tree; standalone_respond answers GETNEXT and GETBULK.
A second task turns queued `Notification`s into traps or informs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config as snmp_config
from pysnmp.entity import engine as snmp_engine
from pysnmp.entity.rfc3413 import cmdrsp, context, ntforg
from pysnmp.error import PySnmpError
from pysnmp.proto import errind, rfc1902
from pysnmp.proto.error import StatusInformation
from pysnmp.proto.mpmod.rfc3412 import SnmpV3MessageProcessingModel
from pysnmp.proto.secmod.rfc2576 import SnmpV1SecurityModel, SnmpV2cSecurityModel

from .mibview import MibView, Oid
from .model import AnyNotification, Notification
from .ratelimit import RateLimitedLog
from .snmp_config import (
    Community,
    ListenAddress,
    NotifyTarget,
    SnmpConfig,
    SnmpConfigError,
    UsmUser,
    effective_access,
    parse_listen,
)
from .standalone_read import CompositeView, SystemGroupView, ViewInstrumentation
from .standalone_respond import BulkResponder, NextResponder

log = logging.getLogger(__name__)

NotificationVarbinds = Callable[[AnyNotification], tuple[Oid, list[tuple[Oid, Any]]]]

READ_VIEW: Oid = (1, 3, 6, 1)
SYSTEM_GROUP: Oid = (1, 3, 6, 1, 2, 1, 1)
NET_SNMP_ENTERPRISE = 8072  # the cronwrap MIB lives under Net-SNMP's experimental arc
ENGINE_ID_FILE = "engine-id"
ENGINE_BOOTS_FILE = "engine-boots"
IDLE_TICKS_EVERY = 5.0  # seconds between pysnmp's housekeeping ticks while nothing is pending

AUTH_PROTOCOLS = {
    "SHA": snmp_config.USM_AUTH_HMAC96_SHA,
    "SHA-224": snmp_config.USM_AUTH_HMAC128_SHA224,
    "SHA-256": snmp_config.USM_AUTH_HMAC192_SHA256,
    "SHA-384": snmp_config.USM_AUTH_HMAC256_SHA384,
    "SHA-512": snmp_config.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS = {
    "none": snmp_config.USM_PRIV_NONE,
    "AES-128": snmp_config.USM_PRIV_CFB128_AES,
    "AES-192": snmp_config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES-256": snmp_config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES-192-C": snmp_config.USM_PRIV_CFB192_AES,
    "AES-256-C": snmp_config.USM_PRIV_CFB256_AES,
}


class StandaloneError(RuntimeError):
    """The standalone agent cannot start (address in use, unusable state); one-line message."""


# --- the timer ---------------------------------------------------------------------------

class QuietDispatcher(AsyncioDispatcher):
    """pysnmp's asyncio dispatcher, waking every tick only while a request awaits an answer.

    pysnmp counts time in ticks (0.1 s): inform timeouts and retries, and the expiry of its
    caches (message state, peer engine ids, USM timelines).  Stock, the timer wakes the process
    10 times a second forever.  Here it ticks every 0.1 s only while a job is pending (pysnmp's
    NotificationOriginator marks each inform awaiting its answer as one); while idle it wakes
    every `idle_every` seconds and delivers the ticks of that interval at once, so the caches
    still expire on time.  An idle wait cut short by a new inform drops its ticks instead:
    the inform's timeout was already counted from the tick count as it stood.
    """

    def __init__(self, idle_every: float = IDLE_TICKS_EVERY,
                 undecodable: UndecodablePackets | None = None) -> None:
        super().__init__()
        self._idle_every = idle_every
        self._busy = asyncio.Event()
        self.undecodable = undecodable or UndecodablePackets()

    def _callback_function(self, incomingTransport: Any, transportAddress: Any,
                           incomingMessage: Any) -> None:
        """Hand a datagram to pysnmp; one that makes pysnmp raise is dropped and counted.

        pysnmp counts and drops most malformed messages itself, but some (e.g. a datagram
        starting with 0xa0) raise out of its decoder into the event loop, which would log a
        traceback per packet.
        """
        try:
            super()._callback_function(incomingTransport, transportAddress, incomingMessage)
        except Exception as exc:  # anything pysnmp raises on a hostile datagram
            self.undecodable.dropped(transportAddress, exc)

    def job_started(self, jobId: Any, count: int = 1) -> None:
        super().job_started(jobId, count)
        self._busy.set()

    async def handle_timeout(self) -> None:
        resolution = self.get_timer_resolution()
        last = time.time()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                if self.jobs_are_pending():
                    await asyncio.sleep(resolution)
                    last = time.time()
                    self.handle_timer_tick(last)
                    continue
                self._busy.clear()
                try:
                    async with asyncio.timeout(self._idle_every):  # not wait_for: see agentx
                        await self._busy.wait()
                    last = time.time()  # woken by a new job: drop the idle interval's ticks
                except TimeoutError:
                    last = self._catch_up(last, resolution)

    def _catch_up(self, last: float, resolution: float) -> float:
        """Deliver one tick per `resolution` elapsed since `last`; the time of the last one."""
        now = time.time()
        while last + resolution <= now:
            last += resolution  # the same sum pysnmp's TimerCallable makes: no tick is skipped
            self.handle_timer_tick(last)
        return last


class UndecodablePackets:
    """Counts datagrams pysnmp could not handle, in snmpInASNParseErrs; logs them rate-limited."""

    def __init__(self, count: Callable[[], None] = lambda: None) -> None:
        self.total = 0
        self._count = count
        self._log = RateLimitedLog("dropped an SNMP datagram", max_causes=1)

    def dropped(self, address: Any, exc: Exception) -> None:
        self.total += 1
        self._count()
        source = ":".join(str(part) for part in tuple(address)[:2])
        self._log.warning("undecodable", f"from {source} ({type(exc).__name__}: {exc}); "
                          f"{self.total} since start")


# --- access control ------------------------------------------------------------------------

def _source_address(transport_information: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    _, address = transport_information
    return ipaddress.ip_address(str(address[0]).split("%")[0])


class SourceCheckedV2c(SnmpV2cSecurityModel):
    """SNMPv2c community look-up that also requires the request's source to be allowed.

    A message mapped to a notification target's security name is the answer to an inform:
    pysnmp maps it so only when it comes from that target's address to the notification
    transport (the target's community entry carries the target's own transport tag).
    """

    def __init__(self, communities: dict[str, Community]) -> None:
        super().__init__()
        self._communities = communities
        self.target_names: set[str] = set()

    def _com2sec(self, snmpEngine: Any, communityName: Any, transportInformation: Any) -> Any:
        found = super()._com2sec(snmpEngine, communityName, transportInformation)
        if str(found[0]) in self.target_names:
            return found
        community = self._communities.get(str(found[0]))
        if community is None or not community.allows(_source_address(transportInformation)):
            raise StatusInformation(errorIndication=errind.unknownCommunityName)
        return found


class NoV1(SnmpV1SecurityModel):
    """SNMPv1 is not served: every v1 request is dropped as an unknown community."""

    def _com2sec(self, snmpEngine: Any, communityName: Any, transportInformation: Any) -> Any:
        raise StatusInformation(errorIndication=errind.unknownCommunityName)


# --- engine id -----------------------------------------------------------------------------

def load_engine_id(state_dir: Path) -> bytes:
    """The agent's snmpEngineID, generated once (RFC 3411 format 5) and kept in state_dir."""
    path = state_dir / ENGINE_ID_FILE
    try:
        return _read_engine_id(path)
    except FileNotFoundError:
        pass
    engine_id = (0x80000000 | NET_SNMP_ENTERPRISE).to_bytes(4, "big") + b"\x05" + os.urandom(12)
    temporary = state_dir / f".{ENGINE_ID_FILE}.{os.getpid()}"
    try:
        temporary.write_text(engine_id.hex() + "\n")
        try:
            os.link(temporary, path)  # never replaces an id another process just created
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        return _read_engine_id(path)
    except OSError as exc:  # a full state disk: serve anyway, with an id for this run only
        with contextlib.suppress(OSError):
            temporary.unlink()
        log.warning("cannot keep the SNMP engine id in %s (%s): using one for this run only",
                    path, exc.strerror)
        return engine_id


def next_engine_boots(state_dir: Path) -> int:
    """Count this start in state_dir (RFC 3414 snmpEngineBoots grows with a kept engine id)."""
    path = state_dir / ENGINE_BOOTS_FILE
    try:
        boots = int(path.read_text().strip() or 0) + 1
    except FileNotFoundError:
        boots = 1
    except ValueError:
        raise StandaloneError(f"{path} does not hold a number; remove it to start again "
                              "from 1") from None
    boots = min(boots, 2**31 - 1)
    temporary = state_dir / f".{ENGINE_BOOTS_FILE}.{os.getpid()}"
    try:
        temporary.write_text(f"{boots}\n")
        os.replace(temporary, path)
    except OSError as exc:  # a full state disk: serve anyway; the next start may reuse it
        with contextlib.suppress(OSError):
            temporary.unlink()
        log.warning("cannot keep the SNMP engine boots in %s (%s): %d for this run only",
                    path, exc.strerror, boots)
    return boots


def _read_engine_id(path: Path) -> bytes:
    text = path.read_text().strip()
    try:
        engine_id = bytes.fromhex(text)
    except ValueError:
        engine_id = b""
    if not 5 <= len(engine_id) <= 32:
        raise StandaloneError(f"{path} does not hold an SNMP engine id (5 to 32 bytes in hex); "
                              "remove it to generate a new one")
    return engine_id


# --- the front end -------------------------------------------------------------------------

class StandaloneFrontend:
    """Serves the cronwrap view over SNMP on its own and sends notifications to targets."""

    def __init__(
        self,
        listen: list[str],
        view: MibView,
        subtree: Oid,
        config: SnmpConfig,
        state_dir: Path,
        notifications: asyncio.Queue[AnyNotification] | None,
        notification_varbinds: NotificationVarbinds,
    ) -> None:
        if not listen:
            raise SnmpConfigError("no --listen address given for the standalone agent")
        self.listen: list[ListenAddress] = [parse_listen(spec) for spec in listen]
        self.config = effective_access(config, self.listen)
        self.view = view
        self.subtree = subtree
        self.state_dir = state_dir
        self.notifications = notifications
        self.notification_varbinds = notification_varbinds
        self.ready = asyncio.Event()
        self.bound: list[tuple[str, int]] = []  # the (host, port) actually bound, in order
        self.engine_id = b""
        self.engine: snmp_engine.SnmpEngine | None = None  # pysnmp's, while run() serves

    async def wait_ready(self) -> None:
        """Return once the listening sockets are bound and requests are answered."""
        await self.ready.wait()

    async def run(self) -> None:
        """Serve until cancelled; the dispatcher is closed on the way out."""
        self.engine_id = load_engine_id(self.state_dir)
        boots = next_engine_boots(self.state_dir)
        with contextlib.ExitStack() as sockets_open:
            sockets = [sockets_open.enter_context(_bind(address)) for address in self.listen]
            engine = snmp_engine.SnmpEngine(snmpEngineID=rfc1902.OctetString(self.engine_id))
            self.engine = engine
            engine.register_transport_dispatcher(
                QuietDispatcher(undecodable=UndecodablePackets(_parse_error_counter(engine))))
            (engine_boots,) = engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB",
                                                                      "snmpEngineBoots")
            engine_boots.syntax = engine_boots.syntax.clone(boots)
            try:
                await self._serve(engine, sockets)
            finally:
                engine.close_dispatcher()

    async def _serve(self, engine: snmp_engine.SnmpEngine, sockets: list[socket.socket]) -> None:
        system = self._configure(engine, sockets)
        self.bound = [sock.getsockname()[:2] for sock in sockets]
        log.info("standalone SNMP agent listening on %s (engine id 0x%s)",
                 ", ".join(str(a) for a in self.listen), self.engine_id.hex())
        self.ready.set()
        if self.notifications is None:
            await asyncio.Future()  # serve until cancelled
        else:
            v2c = engine.security_models[SnmpV2cSecurityModel.SECURITY_MODEL_ID]
            sender = NotificationSender(engine, self.config.targets,
                                        self.notification_varbinds, system.uptime,
                                        v2c.target_names)
            await sender.run(self.notifications)

    def _configure(self, engine: snmp_engine.SnmpEngine, sockets: list[socket.socket]
                   ) -> SystemGroupView:
        for index, (address, sock) in enumerate(zip(self.listen, sockets, strict=True)):
            carrier = udp6.Udp6AsyncioTransport() if address.family == "udp6" \
                else udp.UdpAsyncioTransport()
            domain = (udp6.DOMAIN_NAME if address.family == "udp6" else udp.DOMAIN_NAME)
            snmp_config.add_transport(engine, domain + (1, index + 1),
                                      carrier.open_server_mode(sock=sock))
        allowed = {}
        for index, community in enumerate(self.config.communities):
            name = f"community{index + 1}"
            allowed[name] = community
            snmp_config.add_v1_system(engine, name, community.name)
            snmp_config.add_vacm_user(engine, 2, name, "noAuthNoPriv", readSubTree=READ_VIEW)
        v3 = ForgetfulV3MessageProcessing()  # no peers: NotificationSender's has the targets
        engine.message_processing_subsystems[v3.MESSAGE_PROCESSING_MODEL_ID] = v3
        engine.security_models[SnmpV1SecurityModel.SECURITY_MODEL_ID] = NoV1()
        engine.security_models[SnmpV2cSecurityModel.SECURITY_MODEL_ID] = SourceCheckedV2c(allowed)
        for user in self.config.users:
            _add_user(engine, user)
            snmp_config.add_vacm_user(engine, 3, user.name, user.level, readSubTree=READ_VIEW)
        system = self._system_view(engine)
        snmp_context = context.SnmpContext(engine)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(
            b"", ViewInstrumentation(CompositeView([(SYSTEM_GROUP, system),
                                                    (self.subtree, self.view)])))
        # ViewInstrumentation keeps pysnmp's default write_variables: a Set gets notWritable.
        for responder in (cmdrsp.GetCommandResponder, NextResponder, BulkResponder,
                          cmdrsp.SetCommandResponder):
            responder(engine, snmp_context)
        return system

    def _system_view(self, engine: snmp_engine.SnmpEngine) -> SystemGroupView:
        names = ("sysDescr", "sysObjectID", "sysUpTime", "sysContact", "sysName", "sysLocation")
        symbols = engine.get_mib_builder().import_symbols("SNMPv2-MIB", *names)
        oids = {name: tuple(symbol.name) for name, symbol in zip(names, symbols, strict=True)}
        values = {
            "sysDescr": rfc1902.OctetString(
                f"cronwrap-agent standalone SNMP agent on {os.uname().sysname} "
                f"{os.uname().release}"),
            "sysObjectID": rfc1902.ObjectIdentifier(self.subtree),
            "sysContact": rfc1902.OctetString(self.config.sys_contact),
            "sysName": rfc1902.OctetString(self.config.sys_name or socket.gethostname()),
            "sysLocation": rfc1902.OctetString(self.config.sys_location),
        }
        return SystemGroupView(oids, values, time.monotonic())


def _parse_error_counter(engine: snmp_engine.SnmpEngine) -> Callable[[], None]:
    """Adds one to the engine's SNMPv2-MIB::snmpInASNParseErrs, as pysnmp does for bad BER."""
    (parse_errors,) = engine.get_mib_builder().import_symbols("__SNMPv2-MIB",
                                                              "snmpInASNParseErrs")

    def count() -> None:
        parse_errors.syntax += 1

    return count


def _bind(address: ListenAddress) -> socket.socket:
    family = socket.AF_INET6 if address.family == "udp6" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address.host, address.port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StandaloneError(f"cannot listen on {address}: {exc.strerror}") from None
    return sock


def _add_user(engine: snmp_engine.SnmpEngine, user: UsmUser) -> None:
    snmp_config.add_v3_user(
        engine, user.name, AUTH_PROTOCOLS[user.auth], user.auth_key,
        PRIV_PROTOCOLS[user.priv], user.priv_key or None,
    )


# --- notifications -------------------------------------------------------------------------

class ForgetfulV3MessageProcessing(SnmpV3MessageProcessingModel):
    """pysnmp's SNMPv3 message processing, able to forget a peer's discovered engine id.

    pysnmp keeps the engine id it discovered for an address for 5 minutes, renewed by every
    message from it.  When the receiver is reinstalled (or fails over on the same address) it
    gets a new engine id; its Reports then name a user pysnmp has not localized for that id,
    so they are dropped and every inform times out.  Forgetting the peer makes the next send
    discover the new engine id.  The cache is pysnmp's private state (pysnmp 7.1).

    pysnmp also caches the engine id of any address an unauthenticated Report comes from, ~1 KB
    each for 5 minutes: anyone could grow the agent by sending Reports from many source ports.
    Only `peers` (domain, host, port), the notification targets, are kept.
    """

    def __init__(self, peers: Iterable[tuple[Oid, str, int]] = ()) -> None:
        super().__init__()
        self.peers = set(peers)

    def prepare_data_elements(self, snmpEngine: Any, transportDomain: Oid,
                              transportAddress: Any, wholeMsg: bytes) -> Any:
        try:
            return super().prepare_data_elements(snmpEngine, transportDomain, transportAddress,
                                                 wholeMsg)
        finally:
            host, port = tuple(transportAddress)[:2]
            if (tuple(transportDomain), str(host).split("%")[0], port) not in self.peers:
                self.forget_peer(transportDomain, transportAddress)

    def forget_peer(self, domain: Oid, address: tuple[Any, ...]) -> bool:
        """Drop the engine id cached for (domain, address); False when none was cached."""
        key = (domain, address)
        cache = self._SnmpV3MessageProcessingModel__engineIdCache  # type: ignore[attr-defined]
        if cache.pop(key, None) is None:
            return False
        expiring = self._SnmpV3MessageProcessingModel__engineIdCacheExpQueue  # type: ignore
        for expire_at, keys in list(expiring.items()):  # its expiry would delete a missing key
            while key in keys:
                keys.remove(key)
            if not keys:  # pysnmp's expiry skips a time with no list
                del expiring[expire_at]
        return True


class NotificationSender:
    """Sends each queued notification to every target; inform failures are logged per target."""

    def __init__(
        self,
        engine: snmp_engine.SnmpEngine,
        targets: Iterable[NotifyTarget],
        varbinds: NotificationVarbinds,
        uptime: Callable[[], rfc1902.TimeTicks],
        v2c_target_names: set[str] | None = None,
    ) -> None:
        """v2c_target_names: the SNMPv2c security model's set of names answers may map to."""
        self._engine = engine
        self._varbinds = varbinds
        self._v2c_names = set() if v2c_target_names is None else v2c_target_names
        self._uptime = uptime
        self._originator = ntforg.NotificationOriginator()
        self._transports: dict[str, tuple[Oid, tuple[str, int]]] = {}
        self._targets = [(self._configure(index, target), target)
                         for index, target in enumerate(targets)]
        self._v3 = ForgetfulV3MessageProcessing(
            (tuple(domain), host, port) for domain, (host, port) in self._transports.values())
        engine.message_processing_subsystems[self._v3.MESSAGE_PROCESSING_MODEL_ID] = self._v3
        self._heading = [tuple(symbol.name) for symbol in engine.get_mib_builder().import_symbols(
            "__SNMPv2-MIB", "sysUpTime", "snmpTrapOID")]

    def _configure(self, index: int, target: NotifyTarget) -> str:
        name = f"target{index + 1}"
        params = f"{name}-params"
        if target.user is None:
            assert target.community is not None
            # Tagged with the target's own tag: only messages from the target's address to the
            # notification transport (its answers to informs) map to it.  Requests to the
            # listening transports never do: pysnmp would prefer it to a read community with
            # the same string, and those requests would go unanswered.
            snmp_config.add_v1_system(self._engine, f"{name}-community", target.community,
                                      securityName=name, transportTag=name)
            self._v2c_names.add(name)
            snmp_config.add_target_parameters(self._engine, params, name, "noAuthNoPriv", 1)
            snmp_config.add_vacm_user(self._engine, 2, name, "noAuthNoPriv",
                                      notifySubTree=READ_VIEW)
        else:
            _add_user(self._engine, target.user)
            snmp_config.add_target_parameters(self._engine, params, target.user.name,
                                              target.user.level, 3)
            snmp_config.add_vacm_user(self._engine, 3, target.user.name, target.user.level,
                                      notifySubTree=READ_VIEW)
        is_v6 = ":" in target.host
        carrier = udp6 if is_v6 else udp
        domain = carrier.DOMAIN_NAME + (2,)
        if snmp_config.get_transport(self._engine, domain) is None:
            transport = udp6.Udp6AsyncioTransport() if is_v6 else udp.UdpAsyncioTransport()
            snmp_config.add_transport(self._engine, domain, transport.open_client_mode())
        self._transports[name] = (domain, (target.host, target.port))
        snmp_config.add_target_address(
            self._engine, f"{name}-address", domain, (target.host, target.port), params,
            timeout=int(target.timeout * 100), retryCount=target.retries, tagList=name,
        )
        snmp_config.add_notification_target(self._engine, name, params, name, target.notify_type)
        return name

    async def run(self, queue: asyncio.Queue[AnyNotification]) -> None:
        while True:
            notification = await queue.get()
            self.send(notification)

    def send(self, notification: AnyNotification) -> None:
        """Hand the notification to pysnmp for every target; never waits for a receiver."""
        if not self._targets:
            return
        try:
            trap_oid, varbinds = self._varbinds(notification)
        except Exception as exc:  # a bad notification must not stop the ones after it
            about = (f"job {notification.job.key.name}" if isinstance(notification, Notification)
                     else "the cron daemon")
            log.error("cannot build %s for %s: %s", notification.kind.value, about, exc)
            return
        sys_uptime, snmp_trap_oid = self._heading
        full = [(sys_uptime, self._uptime()),
                (snmp_trap_oid, rfc1902.ObjectIdentifier(trap_oid)), *varbinds]
        what = notification.kind.value
        for name, target in self._targets:
            self._send_to(name, target, what, full, may_rediscover=True)

    def _send_to(self, name: str, target: NotifyTarget, what: str, full: list[tuple[Oid, Any]],
                 may_rediscover: bool) -> None:
        try:
            self._originator.send_varbinds(self._engine, name, None, b"", full, self._sent,
                                           (what, name, target, full, may_rediscover))
        except PySnmpError as exc:
            log.warning("%s %s to %s failed: %s", target.notify_type, what, target, exc)

    def _sent(self, engine: Any, handle: Any, error: Any, status: Any, index: Any,
              varbinds: Any, context: tuple[str, str, NotifyTarget, list[Any], bool]) -> None:
        what, name, target, full, may_rediscover = context
        if error and may_rediscover and target.user is not None \
                and self._v3.forget_peer(*self._transports[name]):
            log.info("%s %s to %s failed (%s): discovering the receiver's engine id again "
                     "(a reinstalled receiver has a new one) and sending it again",
                     target.notify_type, what, target, error)
            self._send_to(name, target, what, full, may_rediscover=False)
        elif error or status:
            reason = error or f"error-status {status}"
            log.warning("%s %s to %s failed: %s", target.notify_type, what, target, reason)
        else:
            log.debug("%s %s to %s acknowledged", target.notify_type, what, target)
