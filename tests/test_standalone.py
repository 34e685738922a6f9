"""The standalone pysnmp agent against real Net-SNMP clients and snmptrapd."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cronwrap.agent import mib
from cronwrap.agent.model import JobKey, JobRecord, JobState, Notification, NotificationKind
from cronwrap.agent.snmp_config import (
    SnmpConfig,
    SnmpConfigError,
    load_snmp_config,
    parse_snmp_config,
)
from cronwrap.agent.standalone import (
    QuietDispatcher,
    StandaloneError,
    StandaloneFrontend,
    load_engine_id,
)
from netsnmp import Snmptrapd, free_port, have_netsnmp, snmp, wait_until
from standalone_views import (
    FAILURES,
    NOTIFY_OWNER,
    SUBTREE,
    AgentRunner,
    RunningAgent,
    SortedView,
    job_rows,
    notification_varbinds,
    row_index,
    runner,
)

__all__ = ["runner"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
]

SYSTEM = "1.3.6.1.2.1.1"
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
V3_KEYS = {"auth_key": "auth-pass-123", "priv_key": "priv-pass-456"}


def oid_text(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def iso(oid: tuple[int, ...]) -> str:
    """An OID as snmptrapd logs it without MIBs: iso.3.6.1..."""
    return "iso" + oid_text(oid)[1:]


def failed(name: str = "backup", failures: int = 7) -> Notification:
    job = JobRecord(key=JobKey(0, name), owner="root", failures=failures, state=JobState.failed)
    return Notification(NotificationKind.failed, job, 0.0)


def walk_lines(tool: str, *args: str) -> list[tuple[tuple[int, ...], str]]:
    """Run snmpwalk/snmpbulkwalk with -On and return (oid, value text) pairs in order."""
    proc = snmp(tool, "-On", "-t", "5", "-r", "1", *args, timeout=300)
    pairs = []
    for line in proc.stdout.splitlines():
        name, _, value = line.partition(" = ")
        if value.startswith("No more variables left in this MIB View"):
            continue  # snmpwalk shows the endOfMibView that ends a walk of the whole tree
        pairs.append((tuple(int(part) for part in name.lstrip(".").split(".")), value))
    return pairs


def get(agent: RunningAgent, *oids: str, auth: tuple[str, ...] = ("-v2c", "-c", "public"),
        check: bool = True) -> subprocess.CompletedProcess[str]:
    return snmp("snmpget", "-On", "-t", "1", "-r", "1", *auth, agent.address, *oids, check=check)


# --- reading ---------------------------------------------------------------------------------

def test_system_group_answers(runner: AgentRunner) -> None:
    agent = runner.start(merge(parse_snmp_config(
        {"contact": "ops@example.org", "location": "rack 4", "name": "cron01"}), _public()))
    out = get(agent, *(f"{SYSTEM}.{n}.0" for n in range(1, 7)),
              auth=("-v2c", "-c", "s3cret-ro")).stdout
    assert "STRING: \"cronwrap-agent standalone" in out
    assert f".1.3.6.1.2.1.1.2.0 = OID: .{oid_text(SUBTREE)}" in out
    assert re.search(r"\.1\.3\.6\.1\.2\.1\.1\.3\.0 = Timeticks: \(\d+\)", out)
    assert '.1.3.6.1.2.1.1.4.0 = STRING: "ops@example.org"' in out
    assert '.1.3.6.1.2.1.1.5.0 = STRING: "cron01"' in out
    assert '.1.3.6.1.2.1.1.6.0 = STRING: "rack 4"' in out


def test_get_answers_cells_and_says_why_nothing(runner: AgentRunner) -> None:
    agent = runner.start()
    cell = oid_text(FAILURES + row_index("root", "job-00002"))
    missing_row = oid_text(FAILURES + row_index("root", "nope"))
    out = get(agent, cell, missing_row, "1.3.6.1.4.1.99999.1.0").stdout.splitlines()
    assert out == [
        f".{cell} = Counter32: 8",
        f".{missing_row} = No Such Instance currently exists at this OID",
        ".1.3.6.1.4.1.99999.1.0 = No Such Object available on this agent at this OID",
    ]


def test_set_is_refused_as_not_writable(runner: AgentRunner) -> None:
    agent = runner.start()
    proc = snmp("snmpset", "-v2c", "-c", "public", "-t", "2", agent.address,
                f"{SYSTEM}.4.0", "s", "someone", check=False)
    assert proc.returncode != 0 and "notWritable" in proc.stderr
    assert '""' in get(agent, f"{SYSTEM}.4.0").stdout


@pytest.mark.parametrize("tool", ["snmpwalk", "snmpbulkwalk"])
def test_walk_from_the_root_flows_from_system_into_the_subtree(runner: AgentRunner,
                                                                tool: str) -> None:
    view_values = job_rows(3)
    agent = runner.start(view=SortedView(view_values))
    pairs = walk_lines(tool, "-v2c", "-c", "public", agent.address, "1.3.6.1")
    oids = [oid for oid, _ in pairs]
    assert oids[:6] == [(1, 3, 6, 1, 2, 1, 1, n, 0) for n in range(1, 7)]
    assert oids[6:] == sorted(view_values)
    last = mib.VALUE_COLUMNS[-1]  # the last instance: job 2's last column, a Counter32 of 2 x it
    assert pairs[-1][1] == f"Counter32: {2 * last}"
    assert len(pairs) == 6 + 1 + 3 * len(mib.VALUE_COLUMNS)


def test_getbulk_interleaves_repeaters_and_stops_at_the_end_of_the_view(
        runner: AgentRunner) -> None:
    view_values = job_rows(2)
    agent = runner.start(view=SortedView(view_values))
    first, second = (oid_text(oid) for oid in sorted(view_values)[1:3])
    out = snmp("snmpbulkget", "-On", "-v2c", "-c", "public", "-Cn1", "-Cr2", agent.address,
               f"{SYSTEM}.4", first, second).stdout.splitlines()
    oids = [line.partition(" = ")[0] for line in out]
    order = sorted(view_values)
    assert oids == [f".{SYSTEM}.4.0", *(f".{oid_text(order[n])}" for n in (2, 3, 3, 4))]
    last = oid_text(order[-1])
    out = snmp("snmpbulkget", "-On", "-v2c", "-c", "public", "-Cr5", agent.address,
               last).stdout.splitlines()
    assert out == [f".{last} = No more variables left in this MIB View "
                   "(It is past the end of the MIB tree)"]


def test_walk_of_ten_thousand_rows_is_complete_and_in_order(runner: AgentRunner) -> None:
    view_values = job_rows(10_000)
    agent = runner.start(view=SortedView(view_values))
    pairs = walk_lines("snmpbulkwalk", "-v2c", "-c", "public", "-Cr50", agent.address,
                       oid_text(SUBTREE))
    assert [oid for oid, _ in pairs] == sorted(view_values)
    assert len(pairs) == 10_000 * len(mib.VALUE_COLUMNS) + 1


def test_snmptable_with_the_mib(runner: AgentRunner) -> None:
    probe = snmp("snmptranslate", "-On", "CRON-JOBS-MIB::cronJobTable", mibs=True, check=False)
    if probe.returncode != 0 or "Cannot" in probe.stderr:
        pytest.skip("mibs/CRON-JOBS-MIB.txt does not load in Net-SNMP yet: "
                    + probe.stderr.strip().splitlines()[-1])
    agent = runner.start()
    out = snmp("snmptable", "-v2c", "-c", "public", "-Ci", agent.address,
               "CRON-JOBS-MIB::cronJobTable", mibs=True).stdout
    assert out.count("job-0000") == 3


def test_several_listen_addresses_including_udp6(runner: AgentRunner) -> None:
    port4, port6 = free_port(), free_port()
    agent = runner.start(listen=[f"udp:127.0.0.1:{port4}", f"udp6:[::1]:{port6}"])
    for address in (f"udp:127.0.0.1:{port4}", f"udp6:[::1]:{port6}"):
        out = snmp("snmpget", "-On", "-v2c", "-c", "public", "-t", "2", address,
                   f"{SYSTEM}.5.0").stdout
        assert ".1.3.6.1.2.1.1.5.0 = STRING:" in out
    assert agent.frontend.bound == [("127.0.0.1", port4), ("::1", port6)]


# --- access control --------------------------------------------------------------------------

def _public(sources: list[str] | None = None) -> SnmpConfig:
    return parse_snmp_config({"community": [{"name": "s3cret-ro",
                                             "sources": sources or ["127.0.0.0/8"]}]})


def merge(first: SnmpConfig, second: SnmpConfig) -> SnmpConfig:
    return replace(first, communities=first.communities + second.communities,
                   users=first.users + second.users, targets=first.targets + second.targets)


def test_configured_community_answers_and_others_time_out(runner: AgentRunner) -> None:
    agent = runner.start(_public())
    assert "STRING" in get(agent, f"{SYSTEM}.5.0", auth=("-v2c", "-c", "s3cret-ro")).stdout
    for community in ("public", "wrong"):
        proc = get(agent, f"{SYSTEM}.5.0", auth=("-v2c", "-c", community), check=False)
        assert proc.returncode != 0 and "Timeout" in proc.stderr, proc.stdout
    v1 = get(agent, f"{SYSTEM}.5.0", auth=("-v1", "-c", "s3cret-ro"), check=False)
    assert v1.returncode != 0 and "Timeout" in v1.stderr


def test_community_from_a_source_outside_its_networks_times_out(runner: AgentRunner) -> None:
    port6 = free_port()
    agent = runner.start(_public(["10.0.0.0/8", "::1/128"]),
                         listen=[f"udp:127.0.0.1:{free_port()}", f"udp6:[::1]:{port6}"])
    proc = get(agent, f"{SYSTEM}.5.0", auth=("-v2c", "-c", "s3cret-ro"), check=False)
    assert proc.returncode != 0 and "Timeout" in proc.stderr, proc.stdout
    allowed = snmp("snmpget", "-On", "-v2c", "-c", "s3cret-ro", "-t", "2", f"udp6:[::1]:{port6}",
                   f"{SYSTEM}.5.0")
    assert ".1.3.6.1.2.1.1.5.0 = STRING:" in allowed.stdout


def _v3_user(auth: str, priv: str, name: str = "monitor") -> SnmpConfig:
    user = {"name": name, "auth": auth, "priv": priv, **V3_KEYS}
    if priv == "none":
        del user["priv_key"]
    return parse_snmp_config({"user": [user]})


NET_SNMP_PRIV = {"AES-128": "AES", "AES-192": "AES192", "AES-256": "AES256",
                 "AES-256-C": "AES256C"}


@pytest.mark.parametrize(("auth", "priv"), [("SHA-256", "AES-128"), ("SHA-512", "AES-256"),
                                            ("SHA", "AES-128"), ("SHA-224", "none"),
                                            ("SHA-384", "AES-256-C")])
def test_v3_user_reads_with_authentication_and_privacy(runner: AgentRunner, auth: str,
                                                       priv: str) -> None:
    agent = runner.start(_v3_user(auth, priv))
    v3 = ["-v3", "-u", "monitor", "-a", auth, "-A", V3_KEYS["auth_key"]]
    if priv == "none":
        v3 += ["-l", "authNoPriv"]
    else:
        v3 += ["-l", "authPriv", "-x", NET_SNMP_PRIV[priv], "-X", V3_KEYS["priv_key"]]
    out = get(agent, f"{SYSTEM}.5.0", oid_text(FAILURES + row_index("root", "job-00001")),
              auth=tuple(v3)).stdout
    assert ".1.3.6.1.2.1.1.5.0 = STRING:" in out and "Counter32: 4" in out
    pairs = walk_lines("snmpbulkwalk", *v3, agent.address, oid_text(SUBTREE))
    assert len(pairs) == 1 + 3 * len(mib.VALUE_COLUMNS)


def test_v3_unknown_user_or_wrong_key_gets_no_data(runner: AgentRunner) -> None:
    agent = runner.start(_v3_user("SHA-256", "AES-128"))
    for user, key in (("stranger", V3_KEYS["auth_key"]), ("monitor", "wrong-pass-999")):
        proc = get(agent, f"{SYSTEM}.5.0", check=False, auth=(
            "-v3", "-l", "authPriv", "-u", user, "-a", "SHA-256", "-A", key, "-x", "AES",
            "-X", V3_KEYS["priv_key"]))
        assert proc.returncode != 0 and "STRING" not in proc.stdout


# --- refusing to start -----------------------------------------------------------------------

def test_refuses_default_community_on_a_non_loopback_address(tmp_path: Path) -> None:
    with pytest.raises(SnmpConfigError) as caught:
        StandaloneFrontend([f"udp:0.0.0.0:{free_port()}"], SortedView({}), SUBTREE,
                           SnmpConfig(), tmp_path, None, notification_varbinds)
    message = str(caught.value)
    assert "\n" not in message and "udp:0.0.0.0" in message and "[[snmp.community]]" in message


def test_refuses_a_readable_config_file_with_secrets(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[[snmp.community]]\nname = "s3cret-ro"\nsources = ["10.0.0.0/8"]\n')
    path.chmod(0o644)
    with pytest.raises(SnmpConfigError, match=r"accessible by group or others.*chmod 600"):
        load_snmp_config(path)
    path.chmod(0o600)
    assert load_snmp_config(path).communities[0].sources[0].exploded == "10.0.0.0/8"
    assert "s3cret-ro" not in repr(load_snmp_config(path))


def test_address_in_use_is_a_clear_error(runner: AgentRunner) -> None:
    agent = runner.start()
    free = free_port()
    with pytest.raises(StandaloneError, match=r"cannot listen on udp:127\.0\.0\.1:\d+: "):
        runner.start(listen=[f"udp:127.0.0.1:{free}", f"udp:{agent.address}"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", free))  # the first address was released


# --- notifications ---------------------------------------------------------------------------

@pytest.fixture
def engine_id(runner: AgentRunner) -> str:
    return load_engine_id(runner.state_dir).hex()


@pytest.fixture
def trapd(tmp_path: Path, engine_id: str) -> Iterator[Snmptrapd]:
    keys = f"SHA-256 {V3_KEYS['auth_key']} AES {V3_KEYS['priv_key']}"
    config = "\n".join([
        "authCommunity log public",
        f"createUser -e 0x{engine_id} traps {keys}",
        f"createUser informs {keys}",
        "authUser log traps priv",
        "authUser log informs priv",
    ])
    with Snmptrapd(tmp_path / "trapd", config=config) as daemon:
        yield daemon


def _target(port: int, kind: str, version: str) -> dict[str, Any]:
    if version == "2c":
        return {"address": f"127.0.0.1:{port}", "type": kind, "community": "public"}
    user = "traps" if kind == "trap" else "informs"
    return {"address": f"127.0.0.1:{port}", "type": kind, "user": user, "auth": "SHA-256",
            "priv": "AES-128", **V3_KEYS}


@pytest.mark.parametrize("version", ["2c", "3"])
@pytest.mark.parametrize("kind", ["trap", "inform"])
def test_notifications_reach_snmptrapd(runner: AgentRunner, trapd: Snmptrapd, kind: str,
                                       version: str) -> None:
    config = parse_snmp_config({"target": [_target(trapd.port, kind, version)]})
    agent = runner.start(config, with_queue=True)
    agent.notify(failed("backup", failures=7))
    trapd.wait_for(r'STRING: "backup"')
    logged = trapd.text().split("\t")
    assert f"{iso(SNMP_TRAP_OID)} = OID: {iso(SUBTREE + (0, 1))}" in logged
    assert f'{iso(NOTIFY_OWNER)} = STRING: "root"' in logged
    assert f"{iso(FAILURES + row_index('root', 'backup'))} = Counter32: 7\n" in logged


def test_a_trap_community_equal_to_a_read_community_still_reads(runner: AgentRunner,
                                                               trapd: Snmptrapd) -> None:
    # Regression: the target's community entry was chosen for incoming requests (pysnmp favours
    # security names that appear in the target table), so `public` reads went unanswered.
    config = parse_snmp_config({"target": [_target(trapd.port, "trap", "2c")]})
    agent = runner.start(config, with_queue=True)
    assert get(agent, oid_text(SUBTREE + (1, 1, 0))).stdout.strip().endswith("Gauge32: 3")
    agent.notify(failed("backup", failures=7))
    trapd.wait_for(r'STRING: "backup"')


def test_failed_inform_is_retried_logged_and_gets_still_answer(
        runner: AgentRunner, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cronwrap.agent.standalone")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # receives, never answers
        silent.bind(("127.0.0.1", 0))
        silent.settimeout(5)
        port = silent.getsockname()[1]
        target = _target(port, "inform", "2c") | {"timeout": 0.3, "retries": 2}
        agent = runner.start(merge(parse_snmp_config({"target": [target]}), _public()),
                             with_queue=True)
        agent.notify(failed())
        attempts = [silent.recvfrom(65535)[0] for _ in range(3)]
        assert "STRING" in get(agent, f"{SYSTEM}.5.0", auth=("-v2c", "-c", "s3cret-ro")).stdout

        def logged() -> list[str]:
            return [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]

        messages = wait_until(logged, 15, "the failed inform to be logged")
        silent.settimeout(0.5)
        with pytest.raises(TimeoutError):
            silent.recvfrom(65535)  # the first attempt and two retries, no more
    assert all(b"public\xa6" in attempt and b"backup" in attempt for attempt in attempts)
    assert messages == [f"inform cronJobFailed to 127.0.0.1:{port} (SNMPv2c) failed: "
                        "No SNMP response received before timeout"]


def test_a_notification_that_cannot_be_built_is_logged_and_the_next_is_sent(
        runner: AgentRunner, trapd: Snmptrapd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="cronwrap.agent.standalone")
    config = parse_snmp_config({"target": [_target(trapd.port, "trap", "2c")]})
    agent = runner.start(config, with_queue=True)
    agent.notify(failed("bad-one"))
    agent.notify(failed("good-one"))
    trapd.wait_for(r'STRING: "good-one"')
    assert "bad-one" not in trapd.text()
    assert [r.getMessage() for r in caplog.records] == [
        "cannot build cronJobFailed for job bad-one: no varbinds for this job"]


def test_engine_id_persists_across_restarts(runner: AgentRunner, trapd: Snmptrapd,
                                            engine_id: str) -> None:
    config = parse_snmp_config({"target": [_target(trapd.port, "trap", "3")]})
    for run in range(2):
        agent = runner.start(config, with_queue=True)
        assert agent.frontend.engine_id.hex() == engine_id
        agent.notify(failed(f"run-{run}"))
        trapd.wait_for(f'STRING: "run-{run}"')
        runner.stop(agent)
        assert (runner.state_dir / "engine-boots").read_text() == f"{run + 1}\n"
    assert (runner.state_dir / "engine-id").read_text().strip() == engine_id


# --- the quiet timer (in-process, no sockets) ------------------------------------------------

class CountingDispatcher(QuietDispatcher):
    """Counts the idle catch-ups; records every tick pysnmp's timer callbacks receive."""

    def __init__(self) -> None:
        super().__init__(idle_every=0.3)
        self.catch_ups = 0
        self.seen: list[int] = []
        self.register_timer_callback(lambda now: self.seen.append(self.get_timer_ticks()))

    def _catch_up(self, last: float, resolution: float) -> float:
        self.catch_ups += 1
        return super()._catch_up(last, resolution)


async def _ticks_until(dispatcher: CountingDispatcher, ticks: int) -> None:
    while dispatcher.get_timer_ticks() < ticks:
        await asyncio.sleep(0.05)


def test_idle_timer_delivers_every_tick_in_batches() -> None:
    async def scenario() -> CountingDispatcher:
        dispatcher = CountingDispatcher()
        timer = asyncio.ensure_future(dispatcher.handle_timeout())
        await asyncio.wait_for(_ticks_until(dispatcher, 10), 30)
        timer.cancel()
        await timer
        return dispatcher

    dispatcher = asyncio.run(scenario())
    ticks = dispatcher.get_timer_ticks()
    assert dispatcher.seen == list(range(1, ticks + 1))  # every tick reached the callbacks
    assert 0 < dispatcher.catch_ups < ticks  # several ticks per wake-up


def test_timer_ticks_one_by_one_while_a_job_is_pending_and_rests_after() -> None:
    async def scenario() -> tuple[int, int, CountingDispatcher]:
        dispatcher = CountingDispatcher()
        timer = asyncio.ensure_future(dispatcher.handle_timeout())
        await asyncio.sleep(0)
        dispatcher.job_started("inform")  # what NotificationOriginator does per inform
        await asyncio.wait_for(_ticks_until(dispatcher, 5), 30)
        during = dispatcher.catch_ups
        dispatcher.job_finished("inform")
        await asyncio.wait_for(_ticks_until(dispatcher, dispatcher.get_timer_ticks() + 3), 30)
        timer.cancel()
        await timer
        return during, dispatcher.catch_ups, dispatcher

    during, after, dispatcher = asyncio.run(scenario())
    assert during == 0  # the job's ticks came from the 0.1 s loop, none from idle catch-up
    assert after > 0
    assert dispatcher.seen == list(range(1, dispatcher.get_timer_ticks() + 1))


@pytest.mark.parametrize("version", ["2c", "3"])
def test_an_inform_is_acknowledged_once_and_not_retransmitted(
        runner: AgentRunner, trapd: Snmptrapd, version: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # Regression (issue 14): snmptrapd's v2c acknowledgement was never matched to the inform,
    # so every receiver got 1 + retries copies and the agent logged a timeout.
    caplog.set_level(logging.DEBUG, logger="cronwrap.agent.standalone")
    target = _target(trapd.port, "inform", version) | {"timeout": 0.5, "retries": 2}
    agent = runner.start(parse_snmp_config({"target": [target]}), with_queue=True)
    agent.notify(failed("acked", failures=7))

    def acknowledged() -> list[str]:
        return [r.getMessage() for r in caplog.records if "acknowledged" in r.getMessage()]

    wait_until(acknowledged, 15, "the inform to be acknowledged")
    agent.notify(failed("after", failures=8))  # an end marker: later than any retransmission
    wait_until(lambda: len(acknowledged()) == 2, 15, "the second inform to be acknowledged")
    trapd.wait_for(r'STRING: "after"')
    assert len(re.findall(r'STRING: "acked"', trapd.text())) == 1
    assert not [r for r in caplog.records if "failed" in r.getMessage()]


def test_v3_informs_follow_a_receiver_reinstalled_with_a_new_engine_id(
        runner: AgentRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Regression (issue 14): the receiver's engine id was discovered once and kept, so once it
    # changed (reinstalled, HA failover on the same address) every inform failed until restart.
    caplog.set_level(logging.DEBUG, logger="cronwrap.agent.standalone")
    keys = f"SHA-256 {V3_KEYS['auth_key']} AES {V3_KEYS['priv_key']}"
    config = f"createUser informs {keys}\nauthUser log informs priv"
    port = free_port()
    target = _target(port, "inform", "3") | {"timeout": 0.5, "retries": 2}
    agent = runner.start(parse_snmp_config({"target": [target]}), with_queue=True)

    def acknowledged() -> int:
        return sum("acknowledged" in r.getMessage() for r in caplog.records)

    for count, install in enumerate(("first", "second", "second-again"), start=1):
        with Snmptrapd(tmp_path / install.split("-")[0], config=config, port=port) as receiver:
            agent.notify(failed(f"to-{install}"))
            receiver.wait_for(f'STRING: "to-{install}"')
            wait_until(lambda n=count: acknowledged() == n, 15, f"inform {count} acknowledged")
    ids = {re.search(r"oldEngineID (0x[0-9a-f]+)", (tmp_path / d / "persist" /
                                                    "snmptrapd.conf").read_text())[1]
           for d in ("first", "second")}
    assert len(ids) == 2  # the receiver really changed its engine id
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
