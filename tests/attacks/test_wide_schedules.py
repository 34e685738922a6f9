"""A crontab's schedules cost the agent what a schedule may cost, not what a user writes.

Debian's crontab(1) caps a crontab's lines (10,000) and commands, not its time fields: it
installs lines whose minute field is 60 KB (`0,0,0,...`), valid cron that cron runs. croniter
took about 2 s of CPU per such line (validating and finding its next start), and discovery kept
each whole: 100 of them held the scan (and every other user's new line) for many minutes and
grew the agent by their size. A schedule longer than the wrapper protocol's 128 characters is
now refused unparsed (the line is not followed, one log line a minute says so); the job line
after them, and another user's, still get their rows.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

from .support import User
from .test_huge_crontab import discovering_agent, peak_growth_installing

WIDE_LINES = 100
MINUTES = "0," * 30_000 + "0"  # a 60 KB minute field crontab(1) takes
MAX_GROWTH_KIB = 16 * 1024  # the crontab is 6 MB


def test_schedules_of_60_kb_cost_the_agent_neither_cpu_nor_memory(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = discovering_agent(shared_base)
    try:
        wide = (f"{MINUTES} * * * * cronwrap -n wide{n} -- true" for n in range(WIDE_LINES))
        growth = peak_growth_installing(
            agent, attacker, victim,
            chain(wide, ["0 3 * * * cronwrap -n after-the-wide-ones -- true"]),
            ["after-the-wide-ones"])
        assert growth < MAX_GROWTH_KIB, f"peak RSS grew by {growth} KiB"
    finally:
        agent.close()
    said = [line for line in agent.log.read_text().splitlines()
            if "longer than 128 characters" in line]
    assert len(said) == 1, said
    assert len(said[0]) < 1000, "the schedule itself is not logged"
