"""A crontab scan of unchanged crontabs reads no file again and adopts nothing again: its cost is
a stat per crontab and a look-up per user, not a parse and an event per line; a changed or new
crontab is read.

These drive the real discovery and core on crontabs under a private root.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
from collections import Counter
from pathlib import Path

import pytest
from cronwrap.agent import lifeevents
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore, Txn
from cronwrap.agent.model import JobKey
from cronwrap.agent.ratelimit import OwnerLines, RateLimitedLog
from cronwrap.agent.sources import crontabs
from cronwrap.agent.store import Store
from cronwrap.agent.transitions.door import DoorLog
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

    def counted(path: Path, with_user: bool, allowance: object = None) -> list[crontabs.Line]:
        seen.append(path)
        return real(path, with_user, allowance)  # type: ignore[arg-type]

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


def install_as(root: Path, user: str, names: list[str], generation: int) -> None:
    """`crontab FILE` of `user`: their file in cron's spool, theirs, mode 0600, a new mtime."""
    path = root / "var/spool/cron/crontabs" / user
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# edited\n" + "".join(f"0 3 29 2 * cronwrap -n {name} -- true\n"
                                             for name in names))
    os.chown(path, pwd.getpwnam(user).pw_uid, 0)
    os.chmod(path, 0o600)
    os.utime(path, ns=(generation, generation))


def test_a_user_rewriting_a_big_crontab_is_parsed_at_most_the_budget_and_others_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack: 'daemon' re-installs 1,000 renamed leap-day jobs before every scan (10 s of
    the injected clock apart); 'bin' changes one line each time.  Lines parsed for 'daemon'
    after the first scan stay within the token bucket (budget + budget/60 per second), 'bin's
    new line is found by the very scan after its change, the deferrals take a log line a
    minute at most (5 minutes: 6 lines), and when 'daemon' stops its last crontab is read:
    nothing is lost."""
    budget, now = 2000, [0.0]
    parsed: Counter[str] = Counter()  # user -> job lines parsed (line_job: shlex and options)
    real = crontabs.line_job

    def counted(logged: str) -> crontabs.LineJob:
        parsed[logged.split()[2].split("-")[0]] += 1
        return real(logged)

    monkeypatch.setattr(crontabs, "line_job", counted)
    monkeypatch.setattr(crontabs, "LINES", RateLimitedLog(
        "crontab", clock=lambda: now[0], lines=OwnerLines(clock=lambda: now[0])))
    caplog.set_level(logging.WARNING)
    (tmp_path / "state").mkdir()
    core = AgentCore(Store(tmp_path / "state"), Config())  # counts and logs the deferrals
    core.door_logs[DoorLog.crontab] = RateLimitedLog(
        "crontab", clock=lambda: now[0], lines=OwnerLines(clock=lambda: now[0]))
    reader = crontabs.CrontabReader(budget, clock=lambda: now[0])
    daemon_uid, bin_uid = pwd.getpwnam("daemon").pw_uid, pwd.getpwnam("bin").pw_uid
    for scan in range(31):
        now[0] = 10.0 * scan
        install_as(tmp_path, "daemon", [f"daemon-{scan}-{n}" for n in range(1000)], scan + 1)
        install_as(tmp_path, "bin", [f"bin-{scan}"], scan + 1)
        if scan == 0:
            crontabs.discover(tmp_path, read=reader)  # the start-up scan reads all, uncharged
            parsed.clear()
            continue
        found = {line.key for line in crontabs.discover(tmp_path, read=reader)}
        for deferral in reader.deferrals():  # as CrontabSource.scan submits them
            core.note(deferral)
        assert JobKey(bin_uid, f"bin-{scan}") in found
        assert parsed["daemon"] <= budget + budget * now[0] / 60.0
        assert parsed["bin"] == scan
    assert parsed["daemon"] > 0 and core.deferred["crontab_reads_deferred"] > 0
    deferred = [r.getMessage() for r in caplog.records if "read deferred" in r.getMessage()]
    assert 1 <= len(deferred) <= 6 and all("/crontabs/daemon " in line for line in deferred)
    for scan in range(31, 38):  # daemon stops; within a minute its last crontab is read
        now[0] = 10.0 * scan
        found = {line.key for line in crontabs.discover(tmp_path, read=reader)}
    assert JobKey(daemon_uid, "daemon-30-999") in found and JobKey(bin_uid, "bin-30") in found
