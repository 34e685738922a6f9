"""A crontab scan of unchanged crontabs reads no file again and adopts nothing again: its cost is
a stat per crontab and a look-up per user, not a parse and an event per line; a changed or new
crontab is read.

These drive the real discovery and core on crontabs under a private root.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from cronwrap.agent import lifeevents
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore, Txn
from cronwrap.agent.model import JobKey
from cronwrap.agent.sources import crontabs
from cronwrap.agent.store import Store
from cronwrap.agent.transitions.outcome import Outcome

CONFIG = Config(cron_timezone="UTC", max_jobs_per_owner=2000)


def write_crontab(root: Path, user: str, lines: int, first: int = 0) -> Path:
    spool = root / "var/spool/cron/crontabs"
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / user
    path.write_text("".join(f"{n % 60} * * * * cronwrap -n job-{n} -- true\n"
                            for n in range(first, first + lines)))
    os.chmod(path, 0o600)  # as crontab(1) leaves it
    return path


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every crontab discovery reads and parses, in order."""
    seen: list[Path] = []
    real = crontabs._lines

    def counted(path: Path, with_user: bool) -> list[crontabs.Line]:
        seen.append(path)
        return real(path, with_user)

    monkeypatch.setattr(crontabs, "_lines", counted)
    return seen


def test_unchanged_crontabs_are_not_read_again(tmp_path: Path, reads: list[Path]) -> None:
    root_tab = write_crontab(tmp_path, "root", 300)
    daemon_tab = write_crontab(tmp_path, "daemon", 200)
    reader = crontabs.CrontabReader()
    first = crontabs.discover(tmp_path, read=reader)
    assert sorted(reads) == sorted([root_tab, daemon_tab]) and len(first) == 500
    reads.clear()
    assert crontabs.discover(tmp_path, read=reader) is first  # nothing changed: the last scan's
    assert reads == []
    write_crontab(tmp_path, "daemon", 200, first=1000)  # crontab -e: the same size, new lines
    os.utime(daemon_tab, ns=(1, 1))
    again = {line.key for line in crontabs.discover(tmp_path, read=reader)}
    assert reads == [daemon_tab]
    assert JobKey(0, "job-299") in again and JobKey(0, "job-0") in again
    daemon_uid = next(line.key.owner_uid for line in first if line.key.owner_uid != 0)
    assert JobKey(daemon_uid, "job-1000") in again and JobKey(daemon_uid, "job-0") not in again
    daemon_tab.unlink()
    assert len(crontabs.discover(tmp_path, read=reader)) == 300


def test_a_scan_like_the_last_one_submits_no_event(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The second of two identical scans adopts nothing; a forgotten row of a line still there
    is made again by the next scan, as before."""
    write_crontab(tmp_path / "root", "root", 400)
    submitted: list[type] = []

    async def scenario() -> None:
        core = AgentCore(Store(tmp_path), CONFIG, clock=lambda: 1_800_000_000.0)
        writer = asyncio.create_task(core.run())
        try:
            found = crontabs.discover(tmp_path / "root")
            await core.set_discovered(found)
            assert len(core.jobs()) == 400 and len(submitted) == 400
            submitted.clear()
            await core.set_discovered(list(found))
            assert submitted == []
            await core.forget(JobKey(0, "job-7"), "root")
            submitted.clear()
            await core.set_discovered(list(found))
            assert submitted == [lifeevents.LineSeen] and JobKey(0, "job-7") in core.jobs()
        finally:
            core.stop()
            await writer

    real = Txn.submit

    def counted(self: Txn, event: lifeevents.LifeEvent) -> Outcome:  # a spy on the adoptions
        if isinstance(event, lifeevents.LineSeen | lifeevents.LineGone):
            submitted.append(type(event))
        return real(self, event)

    monkeypatch.setattr(Txn, "submit", counted)
    asyncio.run(scenario())
