"""The [snmp] config section: parsing, the security rules and their one-line errors."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest
from cronwrap.agent.snmp_config import (
    LOOPBACK_SOURCES,
    ListenAddress,
    SnmpConfig,
    SnmpConfigError,
    check_secret_file,
    effective_access,
    load_snmp_config,
    parse_listen,
    parse_snmp_config,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "agent-snmp.toml.example"
KEYS = {"auth_key": "auth-pass-123", "priv_key": "priv-pass-456"}


def test_the_documented_example_parses() -> None:
    config = parse_snmp_config(tomllib.loads(EXAMPLE.read_text())["snmp"])
    assert [str(c.sources[-1]) for c in config.communities] == ["192.0.2.0/24"]
    assert [(u.name, u.auth, u.priv, u.level) for u in config.users] == [
        ("monitor", "SHA-256", "AES-128", "authPriv")]
    assert [str(t) for t in config.targets] == [
        "192.0.2.10:162 (SNMPv2c)", "[2001:db8::10]:162 (SNMPv3)", "192.0.2.10:162 (SNMPv3)"]
    assert [(t.notify_type, t.timeout, t.retries) for t in config.targets] == [
        ("trap", 1.0, 3), ("inform", 1.5, 3), ("trap", 1.0, 3)]
    assert config.sys_contact == "ops@example.org" and config.sys_name == ""


def test_secrets_stay_out_of_reprs() -> None:
    config = parse_snmp_config(tomllib.loads(EXAMPLE.read_text())["snmp"])
    text = repr(config)
    assert "change-me" not in text and "monitor" in text


@pytest.mark.parametrize(("spec", "expected"), [
    ("udp:127.0.0.1:1161", ListenAddress("udp", "127.0.0.1", 1161)),
    ("udp:0.0.0.0:161", ListenAddress("udp", "0.0.0.0", 161)),
    ("udp6:[::1]:1161", ListenAddress("udp6", "::1", 1161)),
    ("udp:localhost:1161", ListenAddress("udp", "127.0.0.1", 1161)),
])
def test_listen_addresses(spec: str, expected: ListenAddress) -> None:
    assert parse_listen(spec) == expected
    assert str(parse_listen(str(expected))) == str(expected)


@pytest.mark.parametrize(("spec", "message"), [
    ("tcp:127.0.0.1:161", "use udp:HOST:PORT or udp6:[HOST]:PORT"),
    ("udp:127.0.0.1", "a port is required"),
    ("udp:127.0.0.1:99999", "not a number from 1 to 65535"),
    ("udp:example.org:161", "'example.org' is not an IP address"),
    ("udp6:::1:161", "write IPv6 addresses as [ADDRESS]:PORT"),
    ("udp:[::1]:161", "udp needs an IPv4 address"),
])
def test_bad_listen_addresses(spec: str, message: str) -> None:
    with pytest.raises(SnmpConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_listen(spec)


def test_loopback_only_listeners_get_the_default_community() -> None:
    listen = [parse_listen("udp:127.0.0.1:1161"), parse_listen("udp6:[::1]:1161")]
    (community,) = effective_access(SnmpConfig(), listen).communities
    assert community.name == "public" and community.sources == LOOPBACK_SOURCES
    assert community.allows(ipaddress.ip_address("127.0.0.5"))
    assert community.allows(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not community.allows(ipaddress.ip_address("192.0.2.1"))


def test_no_default_community_beside_a_non_loopback_listener() -> None:
    listen = [parse_listen("udp:127.0.0.1:1161"), parse_listen("udp:192.0.2.1:161")]
    with pytest.raises(SnmpConfigError, match=r"refusing to listen on udp:192\.0\.2\.1:161 "):
        effective_access(SnmpConfig(), listen)
    users_only = parse_snmp_config({"user": [{"name": "monitor", **KEYS}]})
    assert effective_access(users_only, listen) == users_only


@pytest.mark.parametrize(("table", "message"), [
    ({"communty": []}, "unknown key 'communty'"),
    ({"community": [{"name": "x"}]}, "'sources' must be a non-empty list"),
    ({"community": [{"name": "x", "sources": ["10.0.0.1/8"]}]}, "bad source network"),
    ({"community": [{"name": "x", "sources": ["10.0.0.0/8"]}] * 2}, "defined twice"),
    ({"user": [{"name": "u", "auth": "MD5", **KEYS}]}, "'auth' must be one of SHA"),
    ({"user": [{"name": "u", "priv": "DES", **KEYS}]}, "'priv' must be one of none"),
    ({"user": [{"name": "u", "auth_key": "short", "priv_key": "long-enough"}]},
     "'auth_key' must be a printable string of at least 8"),
    ({"user": [{"name": "u", "priv": "none", **KEYS}]}, "priv_key given but priv"),
    ({"target": [{"address": "192.0.2.1"}]}, "either 'community' .* or 'user'"),
    ({"target": [{"address": "nms.example.org", "community": "c"}]}, "not an IP address"),
    ({"target": [{"address": "192.0.2.1", "community": "c", "auth": "SHA"}]},
     "auth only apply to SNMPv3 targets"),
    ({"target": [{"address": "192.0.2.1", "community": "c", "type": "notify"}]},
     "'type' must be one of trap, inform"),
    ({"target": [{"address": "192.0.2.1", "community": "c", "retries": -1}]}, "'retries'"),
    ({"user": [{"name": "u", **KEYS}],
      "target": [{"address": "192.0.2.1", "user": "u", "auth_key": "other-key-1",
                  "priv_key": KEYS["priv_key"]}]}, "defined with different keys"),
])
def test_mistakes_are_one_line_errors(table: dict, message: str) -> None:
    with pytest.raises(SnmpConfigError, match=message) as caught:
        parse_snmp_config(table)
    assert "\n" not in str(caught.value)
    assert "auth-pass-123" not in str(caught.value)


def test_a_target_may_share_a_read_user_with_the_same_keys() -> None:
    user = {"name": "u", **KEYS}
    target = {"address": "192.0.2.1:1162", "type": "inform", "user": "u", **KEYS}
    config = parse_snmp_config({"user": [user], "target": [target]})
    assert config.targets[0].user == config.users[0] and config.targets[0].port == 1162


def test_file_with_secrets_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[snmp]\ncontact = "ops"\n')
    path.chmod(0o644)
    assert load_snmp_config(path).sys_contact == "ops"  # no secrets: any mode
    path.write_text('[[snmp.user]]\nname = "u"\nauth_key = "auth-pass-123"\n'
                    'priv_key = "priv-pass-456"\n')
    for mode in (0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(SnmpConfigError, match=f"mode {mode:04o}.*chmod 600"):
            load_snmp_config(path)
    path.chmod(0o600)
    config = load_snmp_config(path)
    check_secret_file(path, config)
    assert config.users[0].name == "u"


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    with pytest.raises(SnmpConfigError, match="cannot read .*agent.toml"):
        load_snmp_config(path)
    path.write_text("[snmp\n")
    with pytest.raises(SnmpConfigError, match="agent.toml: "):
        load_snmp_config(path)
    path.write_text("[snmp]\nfoo = 1\n")
    with pytest.raises(SnmpConfigError, match=r"agent.toml: \[snmp\]: unknown key 'foo'"):
        load_snmp_config(path)
