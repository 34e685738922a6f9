"""Cron's clock: schedules in cron's local zone under Debian cron's DST rules, --tz, --every grids.

The ground truth is bench/debian_cron.py, a minute-by-minute transcription of Debian cron's main
loop that shares no code with the agent; the hand-written cases pin what cron.c says.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from binascii import crc32
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronwrap.agent import schedule, store
from cronwrap.agent.config import Config, ConfigError, load
from cronwrap.agent.core import AgentCore
from cronwrap.agent.cronclock import CronSpec, UnknownZone, next_start, zone_named
from cronwrap.agent.model import JobKey, JobRecord, JobState, NotificationKind
from cronwrap.agent.ratelimit import RateLimitedLog
from cronwrap.agent.sources.crontabs import discover, honours_cron_tz
from cronwrap.agent.store import Job, Store
from cronwrap.agent.watch import Watcher, check
from cronwrap.wrapper.events import Cadence, EventError, Finished, Started, decode_message
from cronwrap.wrapper.events import new_event_id as new_id

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.debian_cron import DebianCron  # noqa: E402

ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/London"]
SCHEDULES = {
    "minutely": "* * * * *", "five": "*/5 * * * *", "hourly-30": "30 * * * *",
    "hourly": "@hourly", "fixed-0130": "30 1 * * *", "fixed-0230": "30 2 * * *",
    "fixed-0100": "0 1 * * *", "fixed-0300": "0 3 * * *", "fixed-hours": "15 0-3 * * *",
    "twice-in-gap": "0,30 1,2 * * *", "wild-minutes-at-2": "*/10 2 * * *",
    "every-2h": "0 */2 * * *", "daily": "@daily", "sunday-0130": "30 1 * * 0",
}


def at(zone: str, text: str, fold: int = 0) -> float:
    """The instant of wall-clock `text` (YYYY-MM-DD HH:MM) in `zone`."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp()


def utc(text: str) -> float:
    return at("UTC", text)


def chain(expr: str, start: float, end: float, zone: str, cron_rules: bool = True) -> list[int]:
    spec, found, now = CronSpec(schedule.NICKNAMES.get(expr, expr)), [], start
    while (upcoming := next_start(spec, now, zone_named(zone), cron_rules)) is not None:
        if upcoming > end:
            break
        found.append(int(upcoming))
        now = upcoming
    return found


def dst_windows(zone: str, hours: int = 48, year: int = 2026) -> list[tuple[float, float]]:
    """`hours` either side of each offset change of `year` (of 1 March if there is none)."""
    changes = zone_named(zone).changes(utc(f"{year}-01-01 00:00"), utc(f"{year + 1}-01-01 00:00"))
    middles = [c.at for c in changes] or [utc(f"{year}-03-01 00:00")]
    return [(middle - hours * 3600, middle + hours * 3600) for middle in middles]


@pytest.mark.parametrize("zone", ZONES)
def test_every_start_matches_debian_crons_main_loop_across_both_dst_changes(zone: str) -> None:
    windows = dst_windows(zone)
    assert len(windows) == (1 if zone in ("UTC", "Asia/Kolkata") else 2)
    for start, end in windows:
        cron = DebianCron(SCHEDULES, lambda t: zone_named(zone).offset(t))
        truth: dict[str, list[int]] = {name: [] for name in SCHEDULES}
        for when, name in cron.runs(int(start), int(end)):
            if not truth[name] or truth[name][-1] != when:  # catch-up runs of one minute
                truth[name].append(when)
        for name, expr in SCHEDULES.items():
            assert chain(expr, start, end, zone) == truth[name], (zone, name)


def test_a_non_utc_zone_is_evaluated_in_local_time() -> None:
    after = utc("2026-06-10 10:48")  # the issue: cron in New York, 47 10 * * * is 14:47 UTC
    assert chain("47 10 * * *", after, after + 86400, "America/New_York") == [
        utc("2026-06-10 14:47")]
    assert chain("48 5 * * *", after, after + 86400, "America/New_York") == [
        utc("2026-06-11 09:48")]
    # half-hour zones: an hourly job starts at half past each UTC hour
    assert chain("0 * * * *", utc("2026-06-10 10:00"), utc("2026-06-10 12:00"),
                 "Asia/Kolkata") == [utc("2026-06-10 10:30"), utc("2026-06-10 11:30")]


def test_new_york_spring_forward_runs_the_skipped_fixed_jobs_right_after_the_jump() -> None:
    jump = at("America/New_York", "2026-03-08 03:00")  # 02:00 EST became 03:00 EDT
    day = (jump - 6 * 3600, jump + 6 * 3600)
    assert chain("30 2 * * *", *day, "America/New_York") == [jump]
    assert chain("0 3 * * *", *day, "America/New_York") == [jump]  # once, not twice
    # wildcard jobs keep their wall-clock times: no 02:xx slots, nothing extra at the jump
    assert chain("*/10 2 * * *", *day, "America/New_York") == []
    hourly = chain("30 * * * *", *day, "America/New_York")
    assert {b - a for a, b in zip(hourly, hourly[1:], strict=False)} == {3600}


def test_new_york_fall_back_runs_fixed_jobs_once_and_wildcards_every_real_hour() -> None:
    first = at("America/New_York", "2026-11-01 01:30", fold=0)  # 01:30 EDT
    second = at("America/New_York", "2026-11-01 01:30", fold=1)  # 01:30 EST, an hour later
    day = (first - 6 * 3600, first + 6 * 3600)
    assert chain("30 1 * * *", *day, "America/New_York") == [first]
    assert [t for t in chain("30 * * * *", *day, "America/New_York")
            if first <= t <= second] == [first, second]
    # asked after the first run, during the repeated hour: tomorrow, not 01:30 EST
    assert next_start(CronSpec("30 1 * * *"), first + 600, zone_named("America/New_York"),
                      True) == at("America/New_York", "2026-11-02 01:30")


def test_london_changes_at_one_oclock_utc() -> None:
    assert chain("30 1 * * *", utc("2026-03-29 00:00"), utc("2026-03-29 06:00"),
                 "Europe/London") == [utc("2026-03-29 01:00")]  # 02:00 BST, after the jump
    assert chain("30 1 * * *", utc("2026-10-25 00:00"), utc("2026-10-25 06:00"),
                 "Europe/London") == [utc("2026-10-25 00:30")]  # 01:30 BST only


def test_a_named_zone_is_evaluated_as_cronie_evaluates_cron_tz() -> None:
    kolkata = Cadence(schedule="30 9 * * *", tz="Asia/Kolkata")
    assert schedule.next_after(kolkata, utc("2026-06-10 00:00"), "America/New_York") == utc(
        "2026-06-10 04:00")
    gap = Cadence(schedule="30 2 * * *", tz="America/New_York")  # no 02:30 on 2026-03-08
    assert schedule.next_after(gap, utc("2026-03-08 05:00")) == at(
        "America/New_York", "2026-03-09 02:30")
    repeated = Cadence(schedule="30 1 * * *", tz="America/New_York")  # 01:30 twice on 11-01
    first = schedule.next_after(repeated, utc("2026-11-01 04:00"))
    assert first == at("America/New_York", "2026-11-01 01:30", fold=0)
    assert schedule.next_after(repeated, first) == at("America/New_York", "2026-11-01 01:30",
                                                      fold=1)


def test_unknown_zones_are_refused_in_config_and_give_no_expectation(
        tmp_path: Path, caplog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule, "ZONE_LINES", RateLimitedLog("schedule", interval=3600.0))
    with pytest.raises(UnknownZone):
        zone_named("Mars/Olympus_Mons")
    with pytest.raises(UnknownZone):
        zone_named("../../etc/passwd")
    path = tmp_path / "agent.toml"
    path.write_text('[agent]\ncron_timezone = "Mars/Olympus_Mons"\n')
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus_Mons'"):
        load(path)
    path.write_text('[agent]\ncron_timezone = "Asia/Kolkata"\ncrontab_cron_tz = "ignore"\n')
    assert load(path).cron_timezone == "Asia/Kolkata"
    path.write_text('[agent]\ncrontab_cron_tz = "sometimes"\n')
    with pytest.raises(ConfigError, match="crontab_cron_tz must be one of auto, honour"):
        load(path)
    assert schedule.next_after(Cadence(schedule="0 * * * *", tz="Nowhere/Land"), 0.0) is None
    assert "unknown time zone 'Nowhere/Land'" in caplog.text
    for name in (f"Nowhere/Land{i}" for i in range(50)):  # one line an hour for them all
        assert schedule.next_after(Cadence(schedule="0 * * * *", tz=name), 0.0) is None
    assert caplog.text.count("unknown time zone") == 1
    assert schedule.refusal(Cadence(schedule="0 * * * *", tz="Nowhere/Land")) == (
        "unknown time zone: the cadence's tz is not in this host's zoneinfo database")


def test_the_zone_travels_in_the_event_and_is_checked_on_decode() -> None:
    event = Started(new_id(), "job", 1.0, 5, Cadence(schedule="0 3 * * *", tz="Asia/Kolkata"))
    assert decode_message(event.to_wire()) == event
    bad = event.to_wire().replace(b"Asia/Kolkata", b"../etc/x")
    with pytest.raises(EventError, match="'tz' must be a time zone name"):
        decode_message(bad)


# ---- --every: each missed slot once, on the job's grid ----

def test_every_counts_each_missed_slot_once_on_its_grid() -> None:
    config = Config()
    cadence = Cadence(every=60.0)  # default grace: half the period
    start = utc("2026-06-10 10:00")
    job = Job(JobRecord(JobKey(1, "tick"), "u", state=JobState.ok, next_expected=start + 60),
              cadence)
    notes = 0
    for now in range(int(start), int(start + 600) + 1, 5):  # a watcher pass every 5 s
        job, kinds = check(job, cadence, float(now), config, False)
        notes += kinds.count(NotificationKind.missed)
    # slots start+60 ... start+540 are past their 30 s grace at start+600; +600 is not yet
    assert job.record.misses == 9 and notes == 9
    assert job.record.next_expected == start + 600


def test_a_coarse_watcher_still_counts_every_slot() -> None:
    cadence = Cadence(every=60.0, grace=10.0)
    start = 1_800_000_000.0
    job = Job(JobRecord(JobKey(1, "tick"), "u", state=JobState.ok, next_expected=start),
              cadence)
    job, kinds = check(job, cadence, start + 3600 + 5, Config(), False)
    assert (job.record.misses, kinds) == (60, [NotificationKind.missed])  # one notification
    assert job.record.next_expected == start + 3600  # its grace has not run out yet


def test_a_running_job_keeps_its_every_grid() -> None:
    cadence = Cadence(every=60.0)
    start = 1_800_000_000.0
    job = Job(JobRecord(JobKey(1, "t"), "u", state=JobState.running, running_pid=1,
                        last_start=start, next_expected=start + 60), cadence)
    job, _ = check(job, cadence, start + 150, Config(), False)
    assert job.record.next_expected == start + 180 and job.record.misses == 0


# ---- the core and watcher on an injected clock in a DST zone ----

def run_days(zone: str, expr: str, start: float, end: float, runs: list[int]
             ) -> tuple[JobRecord, list[NotificationKind]]:
    """A job that starts exactly at `runs`; the real core and watcher every 60 simulated s."""
    async def scenario(tmp: Path) -> tuple[JobRecord, list[NotificationKind]]:
        now = start
        config = Config(cron_timezone=zone, watch_interval=60)
        core = AgentCore(Store(tmp), config, clock=lambda: now)
        watcher = Watcher(core, config, wall=lambda: now, mono=lambda: now)
        queue = core.notifications.subscribe()
        writer = asyncio.create_task(core.run())
        cadence = Cadence(schedule=expr)
        pending = sorted(runs)
        while now < end:
            now += 60
            while pending and pending[0] + 1 <= now:
                begun = pending.pop(0) + 1.0  # cron's start-up second
                for event in (Started(new_id(), "job", begun, 1, cadence),
                              Finished(new_id(), "job", begun + 2, 1, start_time=begun,
                                       duration_ms=2000, cadence=cadence)):
                    await core.submit(1000, "u", event)
            await watcher.tick()
        core.stop()
        await writer
        kinds = []
        while not queue.empty():
            kinds.append(queue.get_nowait().kind)
        return core.records()[0], kinds
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(scenario(Path(tmp)))


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Kolkata", "UTC"])
def test_the_core_sees_no_false_miss_and_no_double_count_across_dst(zone: str) -> None:
    for begin, end in dst_windows(zone, hours=14):
        for expr in ("30 1 * * *", "30 2 * * *", "0 * * * *", "15 0-3 * * *"):
            cron = DebianCron({"job": expr}, lambda t: zone_named(zone).offset(t))
            runs = sorted({t for t, _ in cron.runs(int(begin), int(end - 60))})
            record, kinds = run_days(zone, expr, begin, end, runs)
            assert (record.misses, record.runs) == (0, len(runs)), (zone, expr)
            assert NotificationKind.missed not in kinds
    # and a job that stops running is missed exactly at cron's slots
    begin, end = dst_windows(zone, hours=26)[0]
    cron = DebianCron({"job": "30 2 * * *"}, lambda t: zone_named(zone).offset(t))
    slots = sorted({t for t, _ in cron.runs(int(begin), int(end))})
    record, _ = run_days(zone, "30 2 * * *", begin, end, slots[:1])
    assert record.misses == len([s for s in slots[1:] if s + 300 < end])


# ---- crontab discovery: jobs without -n, CRON_TZ lines ----

def test_jobs_without_a_name_are_discovered_under_the_wrappers_name(tmp_path: Path) -> None:
    spool = tmp_path / "var/spool/cron/crontabs"
    spool.mkdir(parents=True)
    (spool / "root").write_text(
        "*/5 * * * * cronwrap --timeout 60 -- /usr/local/bin/sync-mirror --fast\n"
        "0 4 * * * test -x /x && /usr/bin/cronwrap -- ./backup.sh > /dev/null 2>&1\n"
        "0 5 * * * cronwrap -- /bin/.bäckup\n"  # the wrapper derives backup-<crc32>
        "0 6 * * * cronwrap --bogus -- /bin/true\n")  # the wrapper refuses it: no job
    os.chmod(spool / "root", 0o600)  # as crontab(1) leaves it
    found = {d.key: d for d in discover(tmp_path)}
    names = sorted(key.name for key in found)
    assert names == ["backup-" + format(crc32(".bäckup".encode()), "08x"), "backup.sh",
                     "sync-mirror"]
    assert {found[k].schedule for k in found if k.name == "sync-mirror"} == {"*/5 * * * *"}


def test_cron_tz_lines_count_only_where_cron_reads_them(tmp_path: Path) -> None:
    crontabs = tmp_path / "var/spool/cron/crontabs"
    crontabs.mkdir(parents=True)
    (crontabs / "root").write_text(
        "0 1 * * * cronwrap -n before -- true\nCRON_TZ=Asia/Kolkata\n"
        "30 9 * * * cronwrap -n after -- true\n")
    os.chmod(crontabs / "root", 0o600)  # as crontab(1) leaves it
    assert not honours_cron_tz(tmp_path)  # no cron daemon: Debian's rules
    ignored = discover(tmp_path, cron_tz=False)
    assert {d.key.name: d.tz for d in ignored} == {"before": None, "after": None}
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/crond").write_bytes(b"\x7fELF...CRON_TZ\x00...")
    assert honours_cron_tz(tmp_path)
    honoured = discover(tmp_path, cron_tz=True)
    assert {d.key.name: d.tz for d in honoured} == {"before": None, "after": "Asia/Kolkata"}

    async def adopt() -> Cadence:
        core = AgentCore(Store(tmp_path), Config(cron_timezone="UTC"))
        writer = asyncio.create_task(core.run())
        await core.set_discovered(honoured)
        core.stop()
        await writer
        after = next(job for key, job in core.jobs().items() if key.name == "after")
        assert after.record.next_expected == schedule.next_after(
            Cadence(schedule="30 9 * * *", tz="Asia/Kolkata"), core._clock())
        return core.cadence_of(after)

    assert asyncio.run(adopt()).tz == "Asia/Kolkata"


def test_a_version_1_database_gains_the_zone_column(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / store.DB_NAME)
    db.executescript(f"BEGIN; {store.MIGRATIONS[0]}; PRAGMA user_version=1; COMMIT;")
    db.execute("INSERT INTO jobs (owner_uid, name, owner, state, schedule) "
               "VALUES (1, 'old', 'u', 1, '0 3 * * *')")
    db.commit()
    db.close()
    jobs = Store(tmp_path).load_jobs()
    assert jobs[JobKey(1, "old")].cadence == Cadence(schedule="0 3 * * *")
