"""The `[snmp]` section of the agent's config: what SNMP to serve, access and notification targets.

What to serve: `agentx` (the snmpd master's AgentX address) and `listen` (the standalone
agent's addresses). `parse_snmp_config` turns the `[snmp]` table (already loaded with tomllib)
into an immutable `SnmpConfig`; `effective_access` applies the security rules for a set of
listen addresses; `load_snmp_config` reads a file and refuses one that exposes secrets to other
users.  Every mistake is an `SnmpConfigError` with a one-line message; secrets never appear in
a repr.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

AUTH_PROTOCOLS = ("SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
# AES-192/256 follow the Blumenthal draft (Net-SNMP's -x AES192/AES256); the -C variants
# use the Reeder key extension some vendors use (Net-SNMP's -x AES192C/AES256C).
PRIV_PROTOCOLS = ("none", "AES-128", "AES-192", "AES-256", "AES-192-C", "AES-256-C")
NOTIFY_TYPES = ("trap", "inform")
MIN_KEY_LENGTH = 8  # RFC 3414 11.2: shorter passphrases are refused (Net-SNMP does too)
LOOPBACK_SOURCES = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
DEFAULT_COMMUNITY = "public"
DEFAULT_TRAP_PORT = 162


class SnmpConfigError(ValueError):
    """The SNMP configuration or a --listen address is unusable; the message is one line."""


@dataclass(frozen=True)
class ListenAddress:
    """Where the standalone agent answers: `udp:HOST:PORT` or `udp6:[HOST]:PORT`."""

    family: str  # "udp" or "udp6"
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.family == "udp6" else self.host
        return f"{self.family}:{host}:{self.port}"


@dataclass(frozen=True)
class Community:
    """An SNMPv2c read-only community accepted only from `sources`."""

    name: str = field(repr=False)
    sources: tuple[IPNetwork, ...]

    def allows(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.sources)


@dataclass(frozen=True)
class UsmUser:
    """SNMPv3 USM credentials: authNoPriv when `priv` is "none", otherwise authPriv."""

    name: str
    auth: str
    auth_key: str = field(repr=False)
    priv: str = "none"
    priv_key: str = field(default="", repr=False)

    @property
    def level(self) -> str:
        return "authNoPriv" if self.priv == "none" else "authPriv"


@dataclass(frozen=True)
class NotifyTarget:
    """A notification receiver: v2c (`community`) or v3 (`user`), trap or inform."""

    host: str
    port: int
    notify_type: str
    community: str | None = field(default=None, repr=False)
    user: UsmUser | None = None
    timeout: float = 1.0  # seconds per inform attempt
    retries: int = 3  # inform retransmissions after the first attempt

    @property
    def version(self) -> str:
        return "3" if self.user else "2c"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port} (SNMPv{self.version})"


@dataclass(frozen=True)
class SnmpConfig:
    """Everything the standalone front end needs to know about access and notifications."""

    communities: tuple[Community, ...] = ()
    users: tuple[UsmUser, ...] = ()
    targets: tuple[NotifyTarget, ...] = ()
    sys_contact: str = ""
    sys_location: str = ""
    sys_name: str = ""  # empty: the host name
    agentx: str = ""  # the AgentX master (unix:PATH or tcp:HOST:PORT); empty: no AgentX
    listen: tuple[ListenAddress, ...] = ()  # the standalone agent's addresses

    @property
    def has_secrets(self) -> bool:
        return bool(self.communities or self.users or self.targets)


def parse_listen(spec: str) -> ListenAddress:
    """Parse `udp:HOST:PORT`, `udp6:[HOST]:PORT` (HOST an IP literal or localhost)."""
    family, sep, rest = spec.partition(":")
    if not sep or family not in ("udp", "udp6"):
        raise SnmpConfigError(f"bad listen address {spec!r}: use udp:HOST:PORT or udp6:[HOST]:PORT")
    host, port = _split_host_port(rest, None, f"listen address {spec!r}")
    if host == "localhost":
        host = "::1" if family == "udp6" else "127.0.0.1"
    address = _ip(host, f"listen address {spec!r}")
    if (address.version == 6) != (family == "udp6"):
        raise SnmpConfigError(f"bad listen address {spec!r}: {family} needs an IPv"
                              f"{6 if family == 'udp6' else 4} address")
    return ListenAddress(family, str(address), port)


def parse_agentx_address(address: str) -> tuple[str, str, int]:
    """`unix:PATH` -> ("unix", PATH, 0); `tcp:HOST:PORT` -> ("tcp", HOST, PORT)."""
    kind, _, rest = address.partition(":")
    if kind == "unix" and rest:
        return "unix", rest, 0
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return "tcp", host, int(port)
    raise SnmpConfigError(f"bad AgentX address {address!r}: expected unix:PATH or tcp:HOST:PORT")


def parse_snmp_config(table: Mapping[str, Any]) -> SnmpConfig:
    """Check the `[snmp]` table of the agent's config and turn it into an `SnmpConfig`."""
    _only_keys(table, "[snmp]", {"agentx", "listen", "community", "user", "target", "contact",
                                 "location", "name"})
    agentx = _str(table, "agentx", "[snmp]", "")
    if agentx:
        try:
            parse_agentx_address(agentx)
        except SnmpConfigError as exc:
            raise SnmpConfigError(f"[snmp] agentx: {exc}") from None
    listen = table.get("listen", [])
    if not isinstance(listen, list) or not all(isinstance(spec, str) for spec in listen):
        raise SnmpConfigError("[snmp]: 'listen' must be a list of addresses, e.g. "
                              "[\"udp:127.0.0.1:1161\"]")
    communities = tuple(_community(item, i) for i, item in enumerate(_list(table, "community")))
    users = tuple(_user(item, f"[[snmp.user]] #{i + 1}", "name") for i, item in
                  enumerate(_list(table, "user")))
    targets = tuple(_target(item, i) for i, item in enumerate(_list(table, "target")))
    _no_duplicates([c.name for c in communities], "community", "[[snmp.community]]")
    _no_duplicates([u.name for u in users], "user", "[[snmp.user]]")
    known = {u.name: u for u in users}
    for target in targets:
        if target.user and known.setdefault(target.user.name, target.user) != target.user:
            raise SnmpConfigError(f"[[snmp.target]] {target}: user {target.user.name!r} is also "
                                  "defined with different keys; use another user name")
    return SnmpConfig(
        communities=communities, users=users, targets=targets,
        sys_contact=_str(table, "contact", "[snmp]", ""),
        sys_location=_str(table, "location", "[snmp]", ""),
        sys_name=_str(table, "name", "[snmp]", ""),
        agentx=agentx, listen=tuple(_listen(spec) for spec in listen),
    )


def effective_access(config: SnmpConfig, listen: list[ListenAddress]) -> SnmpConfig:
    """Apply the default-community rule: only loopback-only listeners get `public`."""
    if config.communities or config.users:
        return config
    exposed = [str(address) for address in listen if not address.is_loopback]
    if exposed:
        raise SnmpConfigError(
            f"refusing to listen on {', '.join(exposed)} with no [[snmp.community]] or "
            "[[snmp.user]] configured (the default community is for loopback only)")
    return replace(config, communities=(Community(DEFAULT_COMMUNITY, LOOPBACK_SOURCES),))


def check_secret_file(path: Path, config: SnmpConfig, mode: int | None = None) -> None:
    """Refuse a config file holding secrets that its group or others can access.

    `mode` is the st_mode of the file as it was read (os.fstat of the open file); without it
    the path is stat'ed now.
    """
    if mode is None:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise SnmpConfigError(f"cannot check {path}: {exc.strerror}") from None
    if config.has_secrets and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SnmpConfigError(
            f"{path} holds SNMP secrets but is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):04o}): run chmod 600 {path}")


def load_snmp_config(path: Path) -> SnmpConfig:
    """Read an agent config file's `[snmp]` table, checked, including the file's mode."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
            mode = os.fstat(handle.fileno()).st_mode
    except OSError as exc:
        raise SnmpConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SnmpConfigError(f"{path}: {exc}") from None
    try:
        config = parse_snmp_config(_table(document, "snmp", "the config file"))
    except SnmpConfigError as exc:
        raise SnmpConfigError(f"{path}: {exc}") from None
    check_secret_file(path, config, mode)
    return config


# --- the pieces -------------------------------------------------------------------------

def _listen(spec: str) -> ListenAddress:
    try:
        return parse_listen(spec)
    except SnmpConfigError as exc:
        raise SnmpConfigError(f"[snmp] listen: {exc}") from None


def _community(item: Any, index: int) -> Community:
    where = f"[[snmp.community]] #{index + 1}"
    item = _as_table(item, where)
    _only_keys(item, where, {"name", "sources"})
    name = _secret(item, "name", where, minimum=1)
    sources = item.get("sources")
    if not isinstance(sources, list) or not sources:
        raise SnmpConfigError(f"{where}: 'sources' must be a non-empty list of networks, "
                              "e.g. [\"192.0.2.0/24\", \"::1/128\"]")
    return Community(name, tuple(_network(source, where) for source in sources))


def _user(item: Any, where: str, name_key: str) -> UsmUser:
    item = _as_table(item, where)
    if name_key == "name":
        _only_keys(item, where, {"name", "auth", "auth_key", "priv", "priv_key"})
    name = _str(item, name_key, where)
    if not name:
        raise SnmpConfigError(f"{where}: the user name must not be empty")
    auth = _choice(item, "auth", where, AUTH_PROTOCOLS, "SHA-256")
    priv = _choice(item, "priv", where, PRIV_PROTOCOLS, "AES-128")
    auth_key = _secret(item, "auth_key", where, MIN_KEY_LENGTH)
    priv_key = "" if priv == "none" else _secret(item, "priv_key", where, MIN_KEY_LENGTH)
    if priv == "none" and "priv_key" in item:
        raise SnmpConfigError(f"{where}: priv_key given but priv = \"none\"")
    return UsmUser(name, auth, auth_key, priv, priv_key)


def _target(item: Any, index: int) -> NotifyTarget:
    where = f"[[snmp.target]] #{index + 1}"
    item = _as_table(item, where)
    user_keys = {"user", "auth", "auth_key", "priv", "priv_key"}
    _only_keys(item, where, {"address", "type", "community", "timeout", "retries"} | user_keys)
    host, port = _split_host_port(_str(item, "address", where), DEFAULT_TRAP_PORT, where)
    host = str(_ip(host, where))
    notify_type = _choice(item, "type", where, NOTIFY_TYPES, "trap")
    timeout = item.get("timeout", 1.0)
    retries = item.get("retries", 3)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 60:
        raise SnmpConfigError(f"{where}: 'timeout' must be seconds between 0 and 60")
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise SnmpConfigError(f"{where}: 'retries' must be an integer from 0 to 10")
    if ("community" in item) == ("user" in item):
        raise SnmpConfigError(f"{where}: give either 'community' (SNMPv2c) or 'user' (SNMPv3)")
    if "community" in item:
        extra = sorted(user_keys & item.keys())
        if extra:
            raise SnmpConfigError(f"{where}: {', '.join(extra)} only apply to SNMPv3 targets")
        return NotifyTarget(host, port, notify_type, community=_secret(item, "community", where),
                            timeout=float(timeout), retries=retries)
    user = _user(item, where, "user")
    return NotifyTarget(host, port, notify_type, user=user, timeout=float(timeout),
                        retries=retries)


def _split_host_port(text: str, default_port: int | None, where: str) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise SnmpConfigError(f"bad {where}: write IPv6 addresses as [ADDRESS]:PORT")
        port_text = rest[1:]
    elif text.count(":") > 1:
        raise SnmpConfigError(f"bad {where}: write IPv6 addresses as [ADDRESS]:PORT")
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        if default_port is None:
            raise SnmpConfigError(f"bad {where}: a port is required")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SnmpConfigError(f"bad {where}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _ip(host: str, where: str) -> IPAddress:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise SnmpConfigError(f"bad {where}: {host!r} is not an IP address") from None


def _network(value: Any, where: str) -> IPNetwork:
    if not isinstance(value, str):
        raise SnmpConfigError(f"{where}: sources must be strings like \"192.0.2.0/24\"")
    try:
        return ipaddress.ip_network(value)
    except ValueError as exc:
        raise SnmpConfigError(f"{where}: bad source network {value!r}: {exc}") from None


def _secret(table: Mapping[str, Any], key: str, where: str, minimum: int = 1) -> str:
    value = table.get(key)
    if not isinstance(value, str) or len(value) < minimum or not value.isprintable():
        raise SnmpConfigError(f"{where}: '{key}' must be a printable string of at least "
                              f"{minimum} characters")
    return value


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise SnmpConfigError(f"{where}: '{key}' must be a string")
    return value


def _choice(table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...],
            default: str) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise SnmpConfigError(f"{where}: '{key}' must be one of {', '.join(choices)}")
    return value


def _list(table: Mapping[str, Any], key: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise SnmpConfigError(f"[snmp]: '{key}' must be an array of tables ([[snmp.{key}]])")
    return value


def _table(document: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    return _as_table(document.get(key, {}), f"[{key}] in {where}")


def _as_table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SnmpConfigError(f"{where} must be a table")
    return value


def _only_keys(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SnmpConfigError(f"{where}: unknown key {unknown[0]!r} (known: "
                              f"{', '.join(sorted(allowed))})")


def _no_duplicates(names: list[str], what: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            shown = "(a community)" if what == "community" else repr(name)
            raise SnmpConfigError(f"{where}: {what} {shown} is defined twice")
        seen.add(name)
