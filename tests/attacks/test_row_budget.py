"""Issue 18: one row budget for every source: max_jobs_per_owner holds for crontab lines too.

A user whose crontab has 1,500 `cronwrap -n cN` lines gets max_jobs_per_owner (1,000) rows,
the first lines' in crontab order; the rest are refused, counted once in cronJobRowsRefused
however many times the crontabs are read, and said in one log line. A wrapper's event for a
new job of that user is refused the same way (an error reply, counted, no second line), while
another user's new crontab line still gets its row.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Started, new_event_id
from netsnmp import free_port, snmp

from .support import FAST_AGENT, User, send_as

LINES = 1500
LIMIT = 1000  # max_jobs_per_owner's default
REFUSED_OID = "1.3.6.1.4.1.8072.9999.9999.71.1.44.0"  # cronJobRowsRefused.0


def install_crontab(agent: Agent, user: User, lines: list[str]) -> None:
    """What `crontab FILE` leaves in cron's spool: the user's file, mode 0600."""
    directory = agent.crontabs / "var/spool/cron/crontabs"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / user.name
    temp = directory / f".{user.name}.new"
    temp.write_text("".join(f"{line}\n" for line in lines))
    os.chown(temp, user.uid, user.gid)
    temp.chmod(0o600)
    temp.rename(path)


def rows_of(agent: Agent, user: User) -> list[str]:
    return sorted(key.split("/", 1)[1] for key in agent.status() if key.startswith(f"{user.name}/"))


def job_limit_lines(agent: Agent, user: User) -> list[str]:
    return [line for line in agent.log.read_text().splitlines()
            if "job limit" in line and f"(uid {user.uid})" in line]


def test_a_huge_crontab_gets_max_jobs_per_owner_rows_and_one_line(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    port = free_port()
    config = shared_base / "agent.toml"
    config.write_text("[agent]\ndiscovery_interval = 1.0\n")
    agent = Agent(shared_base / "agent", [*FAST_AGENT, "--config", str(config),
                                          "--listen", f"udp:127.0.0.1:{port}"])
    install_crontab(agent, attacker, [f"0 3 * * * cronwrap -n c{n} -- true" for n in range(LINES)])
    agent.start()
    try:
        wait_for(lambda: len(rows_of(agent, attacker)) >= LIMIT, "the attacker's rows",
                 timeout=120, proc=agent.proc, log=agent.log)
        assert rows_of(agent, attacker) == sorted(f"c{n}" for n in range(LIMIT))

        refused = send_as(attacker, agent, Started(new_event_id(), "extra", 1.8e9, os.getpid()))
        assert not refused[0]["ok"] and "job limit" in refused[0]["error"], refused

        install_crontab(agent, victim, ["0 4 * * * cronwrap -n nightly -- true"])
        wait_for(lambda: rows_of(agent, victim) == ["nightly"], "the victim's new line's row",
                 timeout=60, proc=agent.proc, log=agent.log)
        install_crontab(agent, victim, ["0 4 * * * cronwrap -n nightly -- true",
                                        "0 5 * * * cronwrap -n weekly -- true"])
        wait_for(lambda: rows_of(agent, victim) == ["nightly", "weekly"],
                 "a scan after the victim's first row", timeout=60, proc=agent.proc, log=agent.log)

        assert len(rows_of(agent, attacker)) == LIMIT
        out = snmp("snmpget", "-v2c", "-c", "public", "-Oqv", f"udp:127.0.0.1:{port}",
                   REFUSED_OID).stdout
        assert int(out) == LINES - LIMIT + 1  # each refused line once, and the event
        lines = job_limit_lines(agent, attacker)
        assert len(lines) == 1, lines
        assert "max_jobs_per_owner" in lines[0]
        assert not job_limit_lines(agent, victim)
    finally:
        agent.close()
    assert "Traceback" not in agent.log.read_text()
