"""Bringing one's retired jobs back writes a bounded log.

A job whose crontab line went retires after a few periods (one log line a minute per user); a
user who puts the lines of many retired jobs back into their crontab brought each back with a
log line of its own, past the per-user limiter: 30 jobs, 30 lines at once, and again on every
round of removing the lines and putting them back. Now it is one line a minute per user.
"""

from __future__ import annotations

import time
from pathlib import Path

from agent_support import Agent, wait_for
from cronwrap.agent.model import JobKey, JobRecord, JobState
from cronwrap.agent.store import Job, Store
from cronwrap.wrapper.events import Cadence

from .support import FAST_AGENT, User
from .test_row_budget import install_crontab

JOBS = 30


def test_retired_jobs_brought_back_by_their_lines_write_one_log_line(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker = attackers[0]
    config = shared_base / "agent.toml"
    config.write_text("[agent]\ndiscovery_interval = 0.5\n")
    agent = Agent(shared_base / "agent", [*FAST_AGENT, "--config", str(config)])
    agent.state.mkdir(parents=True, mode=0o700)
    store = Store(agent.state)  # the rows a day of removed lines left
    retired = [Job(JobRecord(JobKey(attacker.uid, f"r{n}"), attacker.name,
                             state=JobState.retired, line_gone="line gone from a crontab",
                             counters_since=time.time() - 86400),
                   Cadence(), reported=True, crontab_schedule="0 3 * * *") for n in range(JOBS)]
    store.commit(retired, [], [], {})
    store.close()
    agent.start()
    try:
        install_crontab(agent, attacker, [f"0 3 * * * cronwrap -n r{n} -- true"
                                          for n in range(JOBS)])
        wait_for(lambda: all(job["state"] != "retired" for key, job in agent.status().items()
                             if key.startswith(f"{attacker.name}/")),
                 "the jobs back", proc=agent.proc, log=agent.log)
    finally:
        agent.close()
    said = [line for line in agent.log.read_text().splitlines() if "no longer retired" in line]
    assert len(said) == 1, said
    assert f"uid {attacker.uid}" in said[0] or attacker.name in said[0]
