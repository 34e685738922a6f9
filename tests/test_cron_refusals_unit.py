"""The crontabs Debian's cron daemon says it refuses, from its own log: the parser, and the
rows they hold in ignoredByCron, once per problem whether discovery, cron's log or both tell it.

tests/data/debian-cron-refusals.jsonl is `journalctl -o json` of the daemon's own lines
(SYSLOG_IDENTIFIER=cron) of a real /usr/sbin/cron -f -L 15 (cron 3.0pl1-162, Debian 12) in a
private mount namespace, started on: an /etc/crontab line with four time fields, /etc/cron.d
files with a minute of 61, a 1,000-byte command, mode 0664, a user owner, a second hard link and
no final newline, and the user cwignored's crontab with `@bogus`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from cronwrap.agent.config import Config
from cronwrap.agent.model import CRON_LOG_SAYS, JobKey, JobSource, JobState, NotificationKind
from cronwrap.agent.schedule import Discovered
from cronwrap.agent.sources import crontabs
from cronwrap.agent.sources.cronrefusals import CrontabRefused, SyntaxProblem, parse_refusal
from cronwrap.agent.sources.journal import Entry, entry_from_fields
from test_cronlog_unit import Life

RECORDING = Path(__file__).with_name("data") / "debian-cron-refusals.jsonl"
SYNTAX = "Syntax error, this crontab file will be ignored"
REFUSED = {  # crontab -> cronJobIgnoredByCron, as cron's log gives it
    "/etc/crontab": f"{CRON_LOG_SAYS}{SYNTAX} (bad day-of-week)",
    "/etc/cron.d/userowned": f"{CRON_LOG_SAYS}WRONG FILE OWNER",
    "/etc/cron.d/nonl": f"{CRON_LOG_SAYS}Missing newline before EOF, this crontab file will be "
                        "ignored",
    "/etc/cron.d/writable": f"{CRON_LOG_SAYS}INSECURE MODE (group/other writable)",
    "/etc/cron.d/toolong": f"{CRON_LOG_SAYS}{SYNTAX} (command too long)",
    "/etc/cron.d/syntax": f"{CRON_LOG_SAYS}{SYNTAX} (bad minute)",
    "/etc/cron.d/linked": f"{CRON_LOG_SAYS}NUMBER OF HARD LINKS > 1",
    "/var/spool/cron/crontabs/cwignored": f"{CRON_LOG_SAYS}{SYNTAX} (bad time specifier)",
}
NOW = 1_800_000_000.0


def recorded(at: float = 0.0) -> list[Entry]:
    """The recording's entries, moved to start at `at` (0: as logged)."""
    entries = [entry_from_fields(json.loads(line)) for line in RECORDING.read_text().splitlines()]
    shift = at - entries[0].time if at else 0.0
    return [replace(entry, time=entry.time + shift) for entry in entries]


def test_every_recorded_refusal_is_understood() -> None:
    lines = [parse_refusal(entry.message) for entry in recorded()]
    refused = [line for line in lines if isinstance(line, CrontabRefused)]
    assert sorted(line.crontab for line in refused) == sorted(REFUSED)
    assert [line.what for line in lines if isinstance(line, SyntaxProblem)] == [
        "bad day-of-week", "command too long", "bad minute", "bad time specifier"]
    assert sum(line is None for line in lines) == 2  # (CRON) INFO: the pidfile, @reboot jobs


def test_names_that_are_no_crontab_are_not_read() -> None:
    for message in ("(..) WRONG FILE OWNER (/x)", "(*system*a.b) WRONG FILE OWNER (/x)",
                    "(*system*../x) ERROR (Syntax error, this crontab file will be ignored)",
                    "(root) CMD ([12] true)", "(CRON) INFO (pidfile fd = 3)"):
        assert parse_refusal(message) is None, message


def line_of(crontab: str, ignored: str | None = None) -> Discovered:
    """A plain root line of `crontab`, named after its file."""
    name = crontab.rsplit("/", 1)[1]
    return Discovered(JobKey(0, name), "root", "* * * * *", None, JobSource.cron_log, crontab,
                      command_line=f"true # {name}", ignored=ignored)


def crontab_files(tmp_path: Path) -> Path:
    """The crontabs of REFUSED, written now, under a root returned."""
    root = tmp_path / "root"
    for crontab in REFUSED:
        (root / crontab.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / crontab.lstrip("/")).touch()
    return root


def test_cron_refusals_hold_rows_once_per_problem(tmp_path: Path) -> None:
    """Discovery saw the mode and the syntax error itself; cron's log tells those again, and
    the rest only it: every line is ignoredByCron, and cronCrontabIgnored was sent once for
    each, also when discovery's next scans tell the same refusals in its own words."""
    by_discovery = {"/etc/cron.d/writable": "INSECURE MODE (group/other writable): mode 0664",
                    "/etc/cron.d/syntax": "syntax error on line 2 (bad schedule)"}
    lines = [line_of(crontab, by_discovery.get(crontab)) for crontab in REFUSED]
    lines.append(line_of("/etc/cron.d/good"))

    root = crontab_files(tmp_path)  # unchanged since cron logged (at NOW, to come)

    async def life() -> Life:
        agent = Life(tmp_path / "state", Config(crontab_root=str(root)))
        writer = asyncio.create_task(agent.core.run())
        await agent.core.set_discovered(lines)
        await agent.apply(recorded(NOW), NOW)
        assert {crontab: why for crontab, (why, _) in agent.state().refused.items()} == REFUSED
        told = {key.name: job.record.ignored_by_cron for key, job in agent.core.jobs().items()}
        assert told == {**{crontab.rsplit("/", 1)[1]: by_discovery.get(crontab, reason)
                           for crontab, reason in REFUSED.items()}, "good": None}
        # the next scans: cron's reasons where discovery saw nothing, then discovery's own
        await agent.core.set_discovered([
            line if line.ignored or line.crontab not in REFUSED else
            Discovered(**{**line.__dict__, "ignored": REFUSED[line.crontab]}) for line in lines])
        await agent.core.set_discovered([line_of(line.crontab, line.ignored or "found later")
                                         if line.crontab in REFUSED else line for line in lines])
        agent.core.stop()
        await writer
        return agent

    agent = asyncio.run(life())
    rows = {key.name: job.record for key, job in agent.core.jobs().items()}
    for crontab in REFUSED:
        row = rows[crontab.rsplit("/", 1)[1]]
        assert row.state == JobState.ignoredByCron, crontab
        assert row.ignored_by_cron == by_discovery.get(crontab, "found later"), crontab
    assert rows["good"].ignored_by_cron is None and rows["good"].state != JobState.ignoredByCron
    sent = agent.kinds()
    assert sorted(sent) == sorted((crontab.rsplit("/", 1)[1], NotificationKind.crontab_ignored)
                                  for crontab in REFUSED)


def test_a_refusal_applies_until_the_crontab_changes(tmp_path: Path) -> None:
    """Discovery lays cron's refusal on a file's lines while the file is as cron refused it;
    once it changed (its ctime is later), cron reads it again and discovery no longer does."""
    cron_d = tmp_path / "etc/cron.d"
    cron_d.mkdir(parents=True)
    long_line = cron_d / "toolong"
    long_line.write_text(f"* * * * * root echo {'x' * 1000}\n")
    said = long_line.stat().st_ctime
    refused = {"/etc/cron.d/toolong": (REFUSED["/etc/cron.d/toolong"], said + 1)}
    found = crontabs.discover(tmp_path, plain_lines=True, refused=refused)
    assert [line.ignored for line in found] == [REFUSED["/etc/cron.d/toolong"]]
    long_line.write_text("* * * * * root echo fixed\n")
    refused = {"/etc/cron.d/toolong": (REFUSED["/etc/cron.d/toolong"], said - 1)}
    assert [line.ignored for line in crontabs.discover(tmp_path, plain_lines=True,
                                                       refused=refused)] == [None]


def test_a_refusal_read_after_its_crontab_changed_is_not_applied(tmp_path: Path) -> None:
    """cron's lines read late (the agent was down), about files written since: cron read them
    again, so its old words hold no row and raise nothing."""
    root = crontab_files(tmp_path)

    async def life() -> Life:
        agent = Life(tmp_path / "state", Config(crontab_root=str(root)))
        writer = asyncio.create_task(agent.core.run())
        await agent.core.set_discovered([line_of(crontab) for crontab in REFUSED])
        await agent.apply(recorded(), NOW)  # logged before the files were written
        agent.core.stop()
        await writer
        return agent

    agent = asyncio.run(life())
    assert agent.state().refused == {}
    assert all(job.record.ignored_by_cron is None for job in agent.core.jobs().values())
    assert agent.kinds() == []
