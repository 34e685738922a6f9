"""A crontab command that looks like a pid in cron's default log (-L 1) is a command, not a pid.

With Debian's default `-L 1`, cron logs a start as `(alice) CMD (COMMAND)`: no pid, and
COMMAND is the user's text. `* * * * * [99999999999999999999] x` is logged as
`(alice) CMD ([99999999999999999999] x)`, which reads like a `-L 15` start of pid 10^20: that
pid, too large for an SQLite INTEGER, failed the commit of the whole batch, so the agent refused
every user's events ("cannot commit", wrappers spool) and read the same batch again, for ever:
one crontab line stopped cron's log for everyone. A pid has at most 7 digits (Linux's pid_max
is at most 2^22): such a line is a start without a pid, the user's command as it is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_support import wait_for
from cronwrap.agent.config import Config
from cronwrap.agent.model import JobRecord
from cronwrap.agent.sources.cronlines import JobStarted, parse
from cronwrap.agent.sources.journal import Entry
from journald import running_journald
from test_cronlog_journal import Cron, follow, following, name, rows
from test_cronlog_unit import CWCRONLOG, Life, by_line

BOOT = "b" * 32
FORGED = "[99999999999999999999] x"
LINES = [Entry("c1", 1_800_000_000.0, BOOT, f"(cwcronlog) CMD ({FORGED})", pid=50),
         Entry("c2", 1_800_000_001.0, BOOT, "(root) CMD (/bin/true)", pid=51)]


def test_a_pid_too_long_is_the_users_command() -> None:
    assert parse(f"(cwcronlog) CMD ({FORGED})") == JobStarted("cwcronlog", FORGED, None)
    assert parse("(cwcronlog) END ([99999999999999999999] x)") is None


def test_a_command_with_a_huge_pid_in_front_stops_no_one(tmp_path: Path) -> None:
    async def scenario() -> dict[tuple[int, str | None], JobRecord]:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply(LINES, LINES[-1].time)  # before: Unavailable (cannot commit)
        rows = by_line({key: job.record for key, job in life.core.jobs().items()})
        assert life.state().place.cursor == "c2"
        life.core.stop()
        await writer
        return rows

    rows = asyncio.run(scenario())
    assert set(rows) == {(CWCRONLOG, FORGED), (0, "/bin/true")}  # root's line after it too
    assert rows[(CWCRONLOG, FORGED)].running_pid is None
    assert rows[(0, "/bin/true")].last_start == LINES[1].time


def test_a_following_agent_counts_the_lines_after_it(tmp_path: Path) -> None:
    """The same line as cron sends it to a real journald, read by a real agent."""
    with running_journald(tmp_path / "journald") as journald:
        cron = Cron(journald)
        agent = follow(tmp_path, journald).start()
        try:
            wait_for(lambda: following(agent), "the agent following cron's log")
            cron.send(f"(nobody) CMD ({FORGED})")
            cron.run("/bin/true")  # root's run after it: before, never applied
            wait_for(lambda: name("/bin/true") in rows(agent), "root's run after the line")
            assert rows(agent)[name("/bin/true")] == (1, 0, 0, 0)
            assert "cannot commit" not in agent.log.read_text()
        finally:
            agent.close()
