"""README's "Monitoring jobs you have not wrapped" on a booted Debian 13: the packaged agent, under
its systemd unit (sandboxed, as root), follows Debian's cron in the real system journal.

The package is installed as README says, cron gets README's `EXTRA_OPTS="-L 15"` and restart,
and root's crontab has lines that are not wrapped (one failing, one named by a comment) and a
wrapped line whose cronwrap path does not exist. A monitoring host then walks cronJobTable
through the container's snmpd: each line is a row of the right source with what cron logged,
and cronLogSource.0 is following(2). One cron minute, plus the container's boot.
"""

from __future__ import annotations

import pytest

from . import readme
from .machine import Container, wait_for
from .snmpview import CRON_JOB_ENTRY, CRON_JOBS_MIB, WALK, decode_index
from .test_host_package import SERVICE, install_per_readme

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT_CRONTAB = """\
* * * * * sh -c 'exit 3'
* * * * * /bin/true  # cronwrap-name=plain-ok
* * * * * /usr/local/bin/cronwrap -n broken -- true
"""
COLUMNS = {3: "runs", 4: "failures", 8: "exit_status", 24: "source", 25: "start_problem"}
CRON_LOG_SOURCE = f"{CRON_JOBS_MIB}.1.13.0"
CRON_MINUTES = 150.0  # two firings at most a minute apart, and the agent's reading


def table(machine: Container) -> dict[tuple[str, str], dict[str, str]]:
    """Some columns of cronJobTable, walked from outside: (owner, name) -> {column: value}."""
    walk = machine.outside(*WALK, CRON_JOB_ENTRY, check=False, timeout=60)
    rows: dict[tuple[str, str], dict[str, str]] = {}
    prefix = f".{CRON_JOB_ENTRY}."
    for line in walk.stdout.splitlines():
        oid, _, value = line.partition(" ")
        if oid.startswith(prefix):
            column, *index = (int(part) for part in oid[len(prefix):].split("."))
            if column in COLUMNS:
                rows.setdefault(decode_index(index), {})[COLUMNS[column]] = value.strip('"')
    return rows


@pytest.fixture(scope="module")
def following(machine: Container, built_deb: object) -> None:
    install_per_readme(machine, built_deb, [])  # type: ignore[arg-type]
    setting = readme.block_containing("text /etc/default/cron", "EXTRA_OPTS")
    machine.write("/etc/default/cron", setting)
    machine.run("crontab", "-", input=ROOT_CRONTAB)
    for command in readme.commands(readme.block_containing("sh", "systemctl restart cron")):
        machine.run("/bin/sh", "-ec", command)


def test_the_packaged_agent_follows_cron_in_the_system_journal(
        machine: Container, following: None) -> None:
    def ran() -> dict[tuple[str, str], dict[str, str]] | None:
        rows = table(machine)
        wanted = [("root", "plain-ok"), ("root", "broken")]
        failing = [key for key in rows if key == ("root", "sh")]  # sh -c 'exit 3': readable
        done = all(int(rows.get(key, {}).get("runs", 0)) >= 1 for key in wanted + failing)
        return rows if failing and done else None

    rows = wait_for(ran, "cron's runs in cronJobTable", CRON_MINUTES)
    assert isinstance(rows, dict)
    failing = rows[("root", "sh")]
    assert failing["source"] == "2" and failing["exit_status"] == "3"
    assert failing["runs"] == failing["failures"]
    ok = rows[("root", "plain-ok")]
    assert (ok["source"], ok["failures"], ok["exit_status"]) == ("2", "0", "0")
    broken = rows[("root", "broken")]
    assert (broken["source"], broken["exit_status"]) == ("1", "127")
    assert "cronwrap was not found" in broken["start_problem"]
    get = machine.outside("snmpget", "-v2c", "-c", "public", "-m", "", "-On", "-Oq",
                          "127.0.0.1", CRON_LOG_SOURCE, timeout=SERVICE)
    assert get.stdout.split()[-1] == "2"  # following
