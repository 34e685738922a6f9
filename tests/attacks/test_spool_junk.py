"""Issue 13 item 2: junk in one's own spool directory never stops the drain or the agent.

A directory, FIFO, socket or symlink named *.json is never opened through, read from or
walked into. Symlinks, FIFOs, sockets and garbage files are refused, counted and removed; a
directory is left in place. One line a minute per user directory says so.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from agent_support import Agent, wait_for

from .support import User, run_as, start_root_agent, tool

REMOVED = ("fifo.json", "socket.json", "shadow.json", "dangling.json", "junk.json")


def plant_junk(attacker: User, agent: Agent) -> Path:
    result = run_as(attacker, *tool("plant_junk.py", str(agent.spool)))
    assert result.returncode == 0, result.stderr
    return agent.spool / str(attacker.uid)


def spool_runs(user: User, agent: Agent, job: str, runs: int) -> None:
    result = run_as(user, *tool("spool_runs.py", str(agent.spool), job, str(runs), "0"))
    assert result.returncode == 0, result.stderr


def runs_of(agent: Agent, key: str) -> object:
    return agent.status().get(key, {}).get("runs")


def lines_about(agent: Agent, directory: Path) -> list[str]:
    return [line for line in agent.log.read_text().splitlines() if str(directory) in line]


def check_junk_handled(agent: Agent, junk_dir: Path) -> None:
    assert sorted(p.name for p in junk_dir.iterdir()) == ["x.json"]  # only the directory stays
    assert (junk_dir / "x.json" / "inner.json").read_text() == "{}\n"
    assert Path("/etc/shadow").exists()
    log = agent.log.read_text()
    assert "Traceback" not in log
    assert len(lines_about(agent, junk_dir)) == 1, lines_about(agent, junk_dir)


def test_junk_in_own_spool_dir_at_start_up(attackers: tuple[User, ...],
                                           shared_base: Path) -> None:
    attacker, victim, other = attackers
    agent = Agent(shared_base / "agent")
    agent.spool.mkdir(parents=True)
    agent.spool.chmod(0o1733)
    junk_dir = plant_junk(attacker, agent)  # uid 1001 sorts before the others' directories
    spool_runs(victim, agent, "payroll", 3)
    spool_runs(other, agent, "backup", 2)
    agent = start_root_agent(agent.base)
    try:
        wait_for(lambda: re.search(r"first spool pass since the start: 10 spooled events applied",
                                   agent.log.read_text()), "the start-up drain",
                 proc=agent.proc, log=agent.log)
        assert runs_of(agent, f"{victim.name}/payroll") == 3
        assert runs_of(agent, f"{other.name}/backup") == 2
        check_junk_handled(agent, junk_dir)
        assert agent.proc is not None and agent.proc.poll() is None  # still serving
    finally:
        agent.close()


def test_junk_planted_while_running(attackers: tuple[User, ...], root_agent: Agent) -> None:
    attacker, victim, _ = attackers
    junk_dir = plant_junk(attacker, root_agent)
    for expected in (2, 4):  # two batches: at least two periodic passes see the junk
        spool_runs(victim, root_agent, "payroll", 2)
        wait_for(lambda: runs_of(root_agent, f"{victim.name}/payroll") == expected,  # noqa: B023
                 f"{expected} runs drained", proc=root_agent.proc, log=root_agent.log)
    check_junk_handled(root_agent, junk_dir)


def test_junk_in_the_spool_root_logs_one_line_and_counts_nothing(
        attackers: tuple[User, ...], root_agent: Agent) -> None:
    attacker, victim, _ = attackers
    done = run_as(attacker, *tool("junk_spool_root.py", str(root_agent.spool), "1500", "5000"))
    assert done.returncode == 0, done.stderr
    spool_runs(victim, root_agent, "nightly", 2)
    wait_for(lambda: runs_of(root_agent, f"{victim.name}/nightly") == 2,
             "the victim's spooled runs, drained past the junk")
    time.sleep(1.0)  # about five more drain passes over the same junk
    lines = [line for line in root_agent.log.read_text().splitlines()
             if "junk" in line or "4000000" in line]
    assert len(lines) == 1, lines[:5]  # was a line per entry, each minute
    assert re.search(r"skipped \d+ entries that are not users' spool directories", lines[0])
    rejected = [line for line in root_agent.log.read_text().splitlines()
                if "refused and removed" in line]
    assert rejected == []
