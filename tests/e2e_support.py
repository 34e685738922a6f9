"""End-to-end rig: real snmptrapd, snmpd, cronwrap-agent and cronwrap runs, started together."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent_support import Agent, cronwrap_command, wait_for
from cronwrap.agent import mib
from netsnmp import SnmpdMaster, Snmptrapd, free_port, snmp

ROOT = ".".join(map(str, mib.ROOT))  # the MIB says where; agent/mib.py follows it
TABLE = f"{ROOT}.1.5"
COUNT = "CRON-JOBS-MIB::cronJobCount.0"
V2C = ("-v2c", "-c", "public")

# "2026-11-25,7:20:49.5,+0:0": CronDateAndTimeOrNever as Net-SNMP prints it with the MIB loaded
_DATE_AND_TIME = re.compile(
    r"(\d+)-(\d+)-(\d+),(\d+):(\d+):(\d+)\.(\d),([+-])(\d+):(\d+)$")


def parse_date_and_time(text: str) -> dt.datetime | None:
    """The instant a printed CronDateAndTimeOrNever names (None for the empty "never" value)."""
    if not text:
        return None
    match = _DATE_AND_TIME.match(text)
    if match is None:
        raise ValueError(f"not a DateAndTime: {text!r}")
    year, month, day, hour, minute, second, decis, sign, off_h, off_m = match.groups()
    offset = dt.timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
    return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                       int(decis) * 100_000, tzinfo=dt.timezone(offset))


def instance(column: str, name: str, owner: str = "root") -> str:
    """A cronJobTable cell by name, e.g. CRON-JOBS-MIB::cronJobRuns."root"."backup"."""
    return f'CRON-JOBS-MIB::{column}."{owner}"."{name}"'


def parse_table_walk(stdout: str) -> dict[str, dict[str, str]]:
    """`snmpwalk` output of cronJobTable (MIB loaded) -> {job name: {column: value}}."""
    rows: dict[str, dict[str, str]] = {}
    line = re.compile(r'CRON-JOBS-MIB::(\w+)\."([^"]+)"\."([^"]+)" = (?:[\w ]+: ?)?(.*)$')
    for text in stdout.splitlines():
        match = line.match(text)
        assert match is not None, f"unexpected walk line: {text!r}"
        column, _owner, name, value = match.groups()
        rows.setdefault(name, {})[column] = value
    return rows


@dataclass
class Rig:
    """One private set of daemons under `base`, the agent serving as asked."""

    base: Path
    trapd: Snmptrapd
    agent: Agent
    master: SnmpdMaster | None = None
    listen: str | None = None
    wrapper_config: Path = field(init=False)

    def __post_init__(self) -> None:
        self.wrapper_config = self.base / "cronwrap.toml"
        self.wrapper_config.write_text("# empty: the tests pass everything as flags\n")

    @property
    def address(self) -> str:
        """Where managers ask: snmpd when there is one, else the standalone listener."""
        return self.master.address if self.master is not None else self.listener

    @property
    def listener(self) -> str:
        """The standalone agent's own address, as HOST:PORT for the Net-SNMP tools."""
        assert self.listen is not None, "the agent was started without --listen"
        return self.listen.removeprefix("udp:")

    def wrapper_argv(self, *args: str) -> list[str]:
        command = cronwrap_command()
        assert command is not None, "cronwrap is not installed"
        return [command, "--config", str(self.wrapper_config),
                "--log-dir", str(self.base / "logs"), "--lock-dir", str(self.base / "locks"),
                "--spool-dir", str(self.agent.spool), "--socket", str(self.agent.socket), *args]

    def wrap(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `cronwrap ARGS` to completion against this rig's agent."""
        return subprocess.run(self.wrapper_argv(*args), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start_wrap(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.wrapper_argv(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def get(self, *oids: str, address: str | None = None) -> list[str]:
        """snmpget with the MIB loaded; the value part (-Ov) of each line."""
        out = snmp("snmpget", *V2C, "-Ov", address or self.address, *oids, mibs=True).stdout
        return out.splitlines()

    def walk(self, tool: str, start: str, *options: str, address: str | None = None,
             mibs: bool = True) -> str:
        return snmp(tool, *V2C, *options, address or self.address, start, mibs=mibs,
                    timeout=120).stdout

    def wait_for_runs(self, name: str, runs: int, address: str | None = None) -> None:
        """Poll until the table shows `runs` runs of `name` (a spooled event waits for a drain)."""
        wanted = f"Counter32: {runs}"

        def seen() -> bool:
            out = snmp("snmpget", *V2C, "-Ov", address or self.address,
                       instance("cronJobRuns", name), mibs=True, check=False).stdout.strip()
            return out == wanted

        wait_for(seen, f"{runs} runs of {name} in the MIB", timeout=30)


def serving(address: str) -> bool:
    """True once cronJobCount.0 answers at `address` (a subagent may still be registering)."""
    probe = snmp("snmpget", *V2C, "-t", "1", "-r", "0", "-Ov", address, COUNT,
                 mibs=True, check=False)
    return probe.returncode == 0 and probe.stdout.startswith("Gauge32:")


def agent_config(base: Path, text: str) -> Path:
    """Write the agent's TOML config, mode 0600 as the agent demands for secrets."""
    path = base / "agent.toml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


@contextmanager
def rig(base: Path, *, agentx: bool = True, listen: bool = False, snmpd_config: str = "",
        trap2sink: bool = True, trapd_config: str = "authCommunity log public",
        trap_port: int | None = None, config: str = "",
        agent_options: tuple[str, ...] = ("--watch-interval", "0.5")) -> Iterator[Rig]:
    """Start snmptrapd (MIB loaded), snmpd (if `agentx`), and the agent; stop them all after."""
    with ExitStack() as stack:
        trapd = stack.enter_context(
            Snmptrapd(base / "trapd", config=trapd_config, mibs=True, port=trap_port))
        master = None
        extra = ["--config", str(agent_config(base, config)), *agent_options]
        if agentx:
            master = stack.enter_context(SnmpdMaster(
                base / "snmpd", trap_port=trapd.port if trap2sink else None,
                extra_config=snmpd_config))
            extra += ["--agentx", f"unix:{master.agentx_socket}"]
        address = None
        if listen:
            address = f"udp:127.0.0.1:{free_port()}"
            extra += ["--listen", address]
        agent = Agent(base / "agent", extra=extra)
        stack.callback(agent.close)
        agent.start()
        built = Rig(base, trapd, agent, master, address)
        for where in ([master.address] if master else []) + ([built.listener] if listen else []):
            wait_for(lambda where=where: serving(where), f"the agent serving at {where}",
                     proc=agent.proc, log=agent.log)
        yield built


GOOD, BAD = 3, 2


def run_good_and_bad(r: Rig) -> tuple[dt.datetime, dt.datetime]:
    """GOOD successful runs of `good`, BAD runs of `bad` exiting 3; the window they ran in."""
    before = dt.datetime.now(dt.UTC)
    for _ in range(GOOD):
        assert r.wrap("-n", "good", "--", "true").returncode == 0
    for _ in range(BAD):
        done = r.wrap("-n", "bad", "--", "sh", "-c", "exit 3")
        assert done.returncode == 3, done.stderr
    after = dt.datetime.now(dt.UTC)
    # the wrapper spools an event the agent is too slow to acknowledge: wait for the drain
    r.wait_for_runs("good", GOOD)
    r.wait_for_runs("bad", BAD)
    return before, after


def assert_rows(rows: dict[str, dict[str, str]], before: dt.datetime,
                after: dt.datetime) -> None:
    assert set(rows) == {"good", "bad"}
    good, bad = rows["good"], rows["bad"]
    assert (good["cronJobRuns"], good["cronJobFailures"]) == (str(GOOD), "0")
    assert (bad["cronJobRuns"], bad["cronJobFailures"]) == (str(BAD), str(BAD))
    assert good["cronJobState"] == "ok(1)" and bad["cronJobState"] == "failed(2)"
    assert good["cronJobLastExitStatus"] == "0" and bad["cronJobLastExitStatus"] == "3"
    for row in (good, bad):
        assert row["cronJobOverlaps"] == row["cronJobTimeouts"] == row["cronJobMisses"] == "0"
        started = parse_date_and_time(row["cronJobLastStart"])
        # DateAndTime has deciseconds: the start may print up to 0.1 s before `before`
        assert started is not None
        assert before - dt.timedelta(seconds=0.1) <= started <= after
    assert parse_date_and_time(bad["cronJobLastSuccess"]) is None
    assert parse_date_and_time(good["cronJobLastSuccess"]) is not None


TRAP = r"CRON-JOBS-MIB::{}\t"


def notification(trapd_text: str, kind: str, name: str) -> str:
    """The one logged line of a `kind` notification about `name` (fails if there is none)."""
    lines = [line for line in trapd_text.splitlines()
             if f"OID: CRON-JOBS-MIB::{kind}\t" in line
             and f"cronNotifyJobName.0 = STRING: {name}\t" in line]
    assert lines, f"no {kind} for {name} in:\n{trapd_text}"
    return lines[-1]


def received(trapd: Snmptrapd, kind: str, name: str, timeout: float = 15) -> str:
    """Wait for a `kind` notification; return its logged line about root's job `name`."""
    trapd.wait_for(TRAP.format(kind), timeout=timeout)
    line = notification(trapd.text(), kind, name)
    assert_about(line, name)
    return line


def assert_about(line: str, name: str) -> None:
    # snmptrapd prints DisplayString (display hint 255a) values without quotes
    assert "CRON-JOBS-MIB::cronNotifyJobOwner.0 = STRING: root\t" in line
    assert f"CRON-JOBS-MIB::cronNotifyJobName.0 = STRING: {name}\t" in line
