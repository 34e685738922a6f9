"""A user's crontab is read a line at a time: its size costs the root agent no memory.

Debian's crontab(1) caps a crontab's lines and its commands, not its comments: a user installs
a crontab of 1 MiB comment lines with their one job line at the end. The agent (crontab
discovery) must not hold the file, nor any of those lines, whole: its peak RSS (VmHWM) grows by
far less than the crontab's size, the job line after the comments still gets its row, and
another user's line gets theirs.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import pytest
from agent_support import Agent, wait_for

from .support import FAST_AGENT, User, as_user, peak_rss_kib, user_environment
from .test_row_budget import install_crontab, rows_of

COMMENT_LINES = 96
COMMENT_BYTES = 1024 * 1024
MAX_GROWTH_KIB = 32 * 1024  # before the fix the agent's peak RSS grew by ~2.5x the crontab


def install_with_crontab_command(agent: Agent, user: User, source: Path) -> None:
    """`crontab SOURCE` run by `user`, Debian's setgid crontab(1), writing into the agent's
    crontab root (a private mount namespace binds it over /var/spool/cron/crontabs)."""
    spool = agent.crontabs / "var/spool/cron/crontabs"
    spool.mkdir(parents=True, exist_ok=True)
    os.chown(spool, 0, grp.getgrnam("crontab").gr_gid)
    spool.chmod(0o1730)
    script = 'mount --bind "$1" /var/spool/cron/crontabs && shift && exec "$@"'
    done = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(spool),
                           *as_user(user, ["crontab", str(source)])],
                          capture_output=True, text=True, env=user_environment(user),
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def peak_growth_installing(agent: Agent, attacker: User, victim: User, lines: Iterable[str],
                           attacker_rows: list[str]) -> int:
    """How much the agent's peak RSS (KiB) grew while `attacker` installed a crontab of
    `lines` with crontab(1) and `victim` a line of their own, once both users' rows are there."""
    source = agent.base / "attackers-crontab"
    with source.open("w") as out:
        out.writelines(f"{line}\n" for line in lines)
    source.chmod(0o644)
    wait_for(lambda: "first spool pass" in agent.log.read_text(), "the agent's first pass")
    before = peak_rss_kib(agent)
    install_with_crontab_command(agent, attacker, source)
    install_crontab(agent, victim, ["0 4 * * * cronwrap -n victims -- true"])
    wait_for(lambda: rows_of(agent, attacker) == attacker_rows
             and rows_of(agent, victim) == ["victims"], "both users' rows", timeout=120,
             proc=agent.proc, log=agent.log)
    return peak_rss_kib(agent) - before


def discovering_agent(base: Path) -> Agent:
    """A root agent scanning crontabs every second, started."""
    if shutil.which("crontab") is None or shutil.which("unshare") is None:
        pytest.skip("needs Debian's crontab(1) and unshare (apt-get install cron util-linux)")
    config = base / "agent.toml"
    config.write_text("[agent]\ndiscovery_interval = 1.0\n")
    return Agent(base / "agent", [*FAST_AGENT, "--config", str(config)]).start()


def test_a_crontab_of_huge_comments_costs_the_agent_no_memory(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = discovering_agent(shared_base)
    try:
        comments = ("#" + "x" * (COMMENT_BYTES - 2) for _ in range(COMMENT_LINES))
        growth = peak_growth_installing(
            agent, attacker, victim,
            chain(comments, ["0 3 * * * cronwrap -n after-the-comments -- true"]),
            ["after-the-comments"])
        assert growth < MAX_GROWTH_KIB, (
            f"peak RSS grew by {growth} KiB reading a {COMMENT_LINES} MiB crontab")
    finally:
        agent.close()
