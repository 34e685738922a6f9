"""A crowded Debian 13 host (issue 18): 10,000 jobs of ten users, 8,000 found by crontab
discovery and 2,000 made by events of the real wrapper, walked through Debian's snmpd.

Each user's crontab holds lines that never fire during the test (`0 0 1 1 *`) and two that
fire every minute (one succeeding, one failing); each user then runs the installed wrapper
(`runuser`) once per event-made job.  Each user ends with exactly max_jobs_per_owner (1,000,
the default) rows.  A monitoring host's snmpbulkwalk of cronJobTable then completes with one
instance of a column per row, status and cronJobCount agree with it, and the every-minute
lines' counts equal cron's own log (`cron -L 15`).  Counts only: the walk's duration and the
agent's memory are printed as FIGURE lines, never asserted.  The current release only (no
`every_release` mark: Debian 12 does not run it); a few minutes plus the container's boot.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from .cronlog import JOURNAL_ARGS, CronLog
from .cronlog import parse as parse_cron_log
from .machine import Container, HostError, wait_for
from .snmpview import CRON_JOB_COUNT, CRON_JOB_ENTRY, WALK, Row, parse_walk
from .test_host_package import SERVICE, install_per_readme, wait_active

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

USERS = tuple(f"crowd{number}" for number in range(10))
LIVE = {"live-ok": "true", "live-fail": "false"}  # job name -> command; fire every minute
ASLEEP = 798  # crontab lines per user that do not fire during the test
BY_EVENTS = 200  # jobs per user made by running the wrapper
ROWS_PER_USER = ASLEEP + len(LIVE) + BY_EVENTS  # the default max_jobs_per_owner
RUNS_COLUMN = 3  # cronJobRuns (tests/test_mib.py ties snmpview's OIDs to the MIB)
AGENT_CONFIG = {"# discovery_interval = 60.0": "discovery_interval = 10.0"}
FIRINGS = 2  # every-minute runs of each live line before the counts are compared
WRAPPER_TIMEOUT = 900.0  # bound on every user's wrapper runs
CRON_MINUTES = FIRINGS * 60.0 + 90.0


def crontab(user: str) -> str:
    asleep = "".join(f"0 0 1 1 * cronwrap -n {user}-c{n} -- true\n" for n in range(ASLEEP))
    live = "".join(f"* * * * * cronwrap -n {name} -- {command}\n"
                   for name, command in LIVE.items())
    return asleep + live


def expected_jobs() -> set[tuple[str, str]]:
    jobs = set()
    for user in USERS:
        jobs |= {(user, f"{user}-c{n}") for n in range(ASLEEP)}
        jobs |= {(user, f"{user}-e{n}") for n in range(BY_EVENTS)}
        jobs |= {(user, name) for name in LIVE}
    return jobs


def status(machine: Container) -> dict[tuple[str, str], dict]:
    jobs = json.loads(machine.run("cronwrap", "status", "--json", timeout=300).stdout)
    return {(job["owner"], job["name"]): job for job in jobs}


def cron_log(machine: Container) -> CronLog:
    return parse_cron_log(machine.run(*JOURNAL_ARGS).stdout)


def agent_log(machine: Container) -> str:
    return machine.run("journalctl", "--no-pager", "-o", "cat", "-u", "cronwrap-agent").stdout


def figure(machine: Container, what: str) -> None:
    """Print the agent's memory now: its main process's RSS (ps), and its cgroup's
    MemoryCurrent where systemd accounts it (not under systemd-nspawn here: "[not set]")."""
    def unit(name: str) -> str:
        return machine.run("systemctl", "show", "--value", "-p", name,
                           "cronwrap-agent").stdout.strip()

    rss = machine.run("ps", "-o", "rss=", "-p", unit("MainPID")).stdout.strip()
    print(f"FIGURE agent {what}: RSS {int(rss) / 1024:.1f} MiB, "
          f"MemoryCurrent {unit('MemoryCurrent')}")


@pytest.fixture(scope="module")
def crowded(machine: Container, built_deb: Path) -> Container:
    """README's install, cron at -L 15, discovery every 10 s, ten users' crontabs and events."""
    install_per_readme(machine, built_deb, [])
    machine.write("/etc/default/cron", 'EXTRA_OPTS="-L 15"\n')
    for commented, setting in AGENT_CONFIG.items():
        machine.run("sed", "-i", f"s/^{commented}$/{setting}/", "/etc/cronwrap/agent.toml")
        assert setting in machine.run("cat", "/etc/cronwrap/agent.toml").stdout
    machine.run("systemctl", "restart", "cron", "cronwrap-agent")
    try:
        wait_active(machine, "cronwrap-agent.service")
    except HostError:
        pytest.fail(f"the agent did not come up:\n{agent_log(machine)}")
    figure(machine, "at start")
    for user in USERS:
        machine.run("useradd", "--create-home", user)
        machine.run("crontab", "-u", user, "-", input=crontab(user))
    run_wrappers(machine)
    return machine


def run_wrappers(machine: Container) -> None:
    """Each user runs the installed wrapper once per event-made job, the users side by side."""
    loops = "".join(
        f"runuser -u {user} -- sh -c 'for n in $(seq 0 {BY_EVENTS - 1}); do "
        f"cronwrap -n {user}-e$n -- true || exit 1; done' & pids=\"$pids $!\"\n" for user in USERS)
    started = time.monotonic()
    machine.sh(loops + "for pid in $pids; do wait $pid; done\n", timeout=WRAPPER_TIMEOUT)
    took = time.monotonic() - started
    print(f"FIGURE {len(USERS) * BY_EVENTS} wrapper runs ({len(USERS)} users side by side) "
          f"took {took:.0f} s")


def test_ten_thousand_rows_walk_through_snmpd_and_count_as_cron_logged(
        crowded: Container) -> None:
    expected = expected_jobs()
    assert len(expected) == len(USERS) * ROWS_PER_USER == 10_000

    def all_there() -> dict[tuple[str, str], dict] | None:
        jobs = status(crowded)
        return jobs if expected <= set(jobs) else None

    try:
        wait_for(all_there, "every job in status", 3 * 60.0, interval=5.0)
    except HostError:
        missing = expected - set(status(crowded))
        pytest.fail(f"{len(missing)} jobs missing, e.g. {sorted(missing)[:5]}:\n"
                    + agent_log(crowded)[-3000:])
    log = wait_for_firings(crowded)
    crowded.run("systemctl", "stop", "cron")  # cron's log is final: compare against it
    log = wait_for(lambda: (final := cron_log(crowded)).all_ended() and final,
                   "cron's last runs to end", SERVICE)
    assert isinstance(log, CronLog)
    wait_for(lambda: live_counts(status(crowded), log) is None,
             "status to count what cron ran", SERVICE, interval=2.0)

    started = time.monotonic()
    walk = crowded.outside(*WALK, CRON_JOB_ENTRY, timeout=600)
    took = time.monotonic() - started
    columns = instances_per_column(walk.stdout)
    print(f"FIGURE snmpbulkwalk of cronJobEntry: {sum(columns.values())} varbinds, "
          f"{len(columns)} columns, {took:.1f} s")
    figure(crowded, f"at {len(expected)} jobs")

    rows = parse_walk(walk.stdout)
    jobs = status(crowded)
    count = crowded.outside(*WALK, CRON_JOB_COUNT).stdout.split()[-1]
    assert columns[RUNS_COLUMN] == len(rows) == len(jobs) == int(count)
    assert expected <= set(rows)
    assert len(set(rows) - expected) == len(rows) - 10_000  # the rest: the host's own lines
    assert set(columns.values()) == {len(rows)}, columns  # every column has every row
    assert live_counts(jobs, log) is None
    assert (mismatch := live_counts_of_rows(rows, log)) is None, mismatch
    assert "max_jobs_per_owner" not in agent_log(crowded)  # no row was refused


def instances_per_column(walk: str) -> Counter[int]:
    """Column number -> how many instances of it a numeric walk of cronJobEntry returned."""
    prefix = f".{CRON_JOB_ENTRY}."
    return Counter(int(line[len(prefix):].split(".", 1)[0])
                   for line in walk.splitlines() if line.startswith(prefix))


def wait_for_firings(machine: Container) -> CronLog:
    """Wait until cron has started every user's live lines FIRINGS times."""
    def fired() -> CronLog | None:
        log = cron_log(machine)
        started = Counter((run.user, run.job) for run in log.runs)
        wanted = [(user, name) for user in USERS for name in LIVE]
        return log if all(started[key] >= FIRINGS for key in wanted) else None

    found = wait_for(fired, f"cron to run every live line {FIRINGS} times", CRON_MINUTES, 5.0)
    assert isinstance(found, CronLog)
    return found


def live_counts(jobs: dict[tuple[str, str], dict], log: CronLog) -> str | None:
    """The first live job whose (runs, failures) in status differ from cron's log, or None."""
    rows = {key: Row(runs=job["runs"], failures=job["failures"]) for key, job in jobs.items()}
    return live_counts_of_rows(rows, log)


def live_counts_of_rows(rows: dict[tuple[str, str], Row], log: CronLog) -> str | None:
    tallies = log.tallies()
    for user in USERS:
        for name in LIVE:
            tally, row = tallies[(user, name)], rows.get((user, name), Row())
            by_cron, by_agent = (tally.runs, tally.failures), (row.runs, row.failures)
            if by_cron != by_agent or by_cron[0] < FIRINGS:
                return f"{user} {name}: cron's log {by_cron}, agent {by_agent}"
    return None
