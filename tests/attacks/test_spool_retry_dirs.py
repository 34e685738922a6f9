"""The spool drain's memory is bounded per owner, however many fallback directories it made.

A pass notes each owner's retries (`r-<id>.json`) to drain them first, at most WINDOW (1,000)
of them. A user may make any number of fallback spool directories (`<uid>.<hex>`), each full
of empty files named like retries; the agent must still note at most WINDOW for that user in
all: its peak RSS (VmHWM) grows by far less than the names would take, and another user's
spooled run is still applied.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Finished, new_event_id

from .support import FAST_AGENT, User, peak_rss_kib, run_as, spool_as, tool

DIRECTORIES = 100
RETRIES_EACH = 1000
MAX_GROWTH_KIB = 8 * 1024  # 150,000 names noted took 24 MiB more before the fix (0.3 after)


def runs_of(agent: Agent, user: User, job: str) -> int:
    return agent.status().get(f"{user.name}/{job}", {}).get("runs", 0)


def test_many_fallback_dirs_of_retries_cost_the_drain_no_memory(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = Agent(shared_base / "agent", list(FAST_AGENT)).start()
    try:
        wait_for(lambda: "first spool pass" in agent.log.read_text(), "the agent's first pass")
        before = peak_rss_kib(agent)
        assert agent.proc is not None
        os.kill(agent.proc.pid, signal.SIGSTOP)  # the files all wait for the same pass
        try:
            made = run_as(attacker, *tool("spool_retry_dirs.py", str(agent.spool),
                                          str(DIRECTORIES), str(RETRIES_EACH)), timeout=600)
            assert made.returncode == 0, made.stderr
            assert int(made.stdout) == DIRECTORIES * RETRIES_EACH
            start = 1_700_000_000.0
            spool_as(victim, agent, Finished(new_event_id(), "victims", start + 1, 4242,
                                             start_time=start, duration_ms=1000))
        finally:
            os.kill(agent.proc.pid, signal.SIGCONT)
        wait_for(lambda: runs_of(agent, victim, "victims") == 1, "the victim's spooled run",
                 timeout=120, proc=agent.proc, log=agent.log)
        growth = peak_rss_kib(agent) - before
        assert growth < MAX_GROWTH_KIB, (
            f"peak RSS grew by {growth} KiB for {DIRECTORIES} directories of retries")
    finally:
        agent.close()
