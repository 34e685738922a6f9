"""A pid cron's log names again before its first run's lines are all logged: another run's.

Debian's cron (-L 15) names a run by its shell's pid P: `(alice) CMD ([P] ...)`, then, from the
same watching process once it has reaped P, `(CRON) error (grandchild #P failed with exit
status N)` and `(alice) END ([P] ...)`. Between that reap and those lines P is free: a user who
burns pids until the counter comes round to P, and whose job ends as another user's starts at
the minute, can have that user's run get P. Their late error and END lines then ended the
other user's run with their own exit status (a forged failure; the real END was dropped). Only
the process that logged a run's start speaks for its end (the journal's _PID, set by journald).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cronwrap.agent.config import Config
from cronwrap.agent.model import JobRecord
from cronwrap.agent.sources.journal import Entry
from test_cronlog_unit import CWCRONLOG, FLOODER, Life, by_line

BOOT = "b" * 32
ATTACKER_WATCHER, VICTIM_WATCHER = 500, 600  # the _PID of cron's process watching each run


def line(number: int, watcher: int, message: str) -> Entry:
    return Entry(f"c{number}", 1_800_000_000.0 + number, BOOT, message, pid=watcher)


# the order a real journal shows when the victim's shell got pid 7 just after the
# attacker's shell (pid 7 too) was reaped, before its watcher logged its error and END
REUSED = [
    line(1, ATTACKER_WATCHER, "(flooder) CMD ([7] sh -c 'exit 9')"),
    line(2, VICTIM_WATCHER, "(cwcronlog) CMD ([7] /usr/bin/backup)"),
    line(3, ATTACKER_WATCHER, "(CRON) error (grandchild #7 failed with exit status 9)"),
    line(4, ATTACKER_WATCHER, "(flooder) END ([7] sh -c 'exit 9')"),
    line(5, VICTIM_WATCHER, "(cwcronlog) END ([7] /usr/bin/backup)"),
]


def test_another_watchers_lines_for_a_reused_pid_do_not_end_the_run(tmp_path: Path) -> None:
    async def scenario() -> JobRecord:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply(REUSED, REUSED[-1].time)
        rows = by_line({key: job.record for key, job in life.core.jobs().items()})
        life.core.stop()
        await writer
        assert (FLOODER, "sh -c 'exit 9'") in rows
        return rows[(CWCRONLOG, "/usr/bin/backup")]

    victim = asyncio.run(scenario())
    # before: (1, 1, 9) and a run ended at the attacker's END (line 4), 1 s long
    assert (victim.runs, victim.failures, victim.last_exit_status) == (1, 0, 0)
    assert victim.last_duration_ms == 3000  # from its CMD (line 2) to its own END (line 5)
    assert victim.running_pid is None
