"""The store, state machine, watch rules and notifications without sockets (real SQLite files)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from cronwrap.agent import schedule, store
from cronwrap.agent.config import Config, ConfigError, load
from cronwrap.agent.core import AgentCore, Rejected, Unavailable, apply_event
from cronwrap.agent.model import (
    AgentStats,
    JobKey,
    JobRecord,
    JobSource,
    JobState,
    Notification,
    NotificationKind,
)
from cronwrap.agent.store import Job, Store
from cronwrap.agent.watch import Watcher, check
from cronwrap.agent.writer import LateNotifications
from cronwrap.wrapper.events import Cadence, Finished, Overlapped, Started, new_event_id

KEY = JobKey(1000, "backup")
T0 = 1_800_000_000.0
NO_CADENCE = Cadence()


def started(t: float, pid: int = 10, cadence: Cadence = NO_CADENCE) -> Started:
    return Started(new_event_id(), KEY.name, t, pid, cadence=cadence)


def finished(t: float, exit_status: int = 0, pid: int = 10, timed_out: bool = False) -> Finished:
    return Finished(new_event_id(), KEY.name, t + 1, pid, start_time=t, exit_status=exit_status,
                    duration_ms=1000, timed_out=timed_out)


def run_machine(*events: Started | Finished | Overlapped) -> tuple[Job, list[NotificationKind]]:
    job = Job(JobRecord(KEY, "alice"))
    kinds: list[NotificationKind] = []
    for event in events:
        job, new = apply_event(job, event, lambda j: j.cadence)
        kinds += new
    return job, kinds


def test_store_round_trip_and_migrations(tmp_path: Path) -> None:
    db = Store(tmp_path)
    job = Job(JobRecord(KEY, "alice", runs=3, failures=1, state=JobState.failed,
                        last_exit_status=2, last_start=T0, next_expected=T0 + 60,
                        last_log_path="/l", source=JobSource.cron_log, start_problem="why"),
              Cadence(schedule="* * * * *", grace=5.0), last_end=T0 + 1, alarm=True,
              reported=True)
    db.commit([job], [], [("a" * 32, T0, 1000)], {"events_accepted": 4, "events_rejected": 1},
              source_states={"cronlog": '{"place": {}}'})
    db.close()
    again = Store(tmp_path)
    assert again.load_jobs() == {KEY: job}
    assert again.load_counters() == {"events_accepted": 4, "events_rejected": 1,
                                     "cron_log_entries": 0, "rows_refused": 0}
    assert again.load_source_states() == {"cronlog": '{"place": {}}'}
    assert again.load_applied(T0 - 1) == [("a" * 32, T0, 1000)]
    again.commit([], [KEY], [], {}, prune_before=T0 + 1)
    assert again.load_jobs() == {} and again.load_applied(0) == []
    again.close()
    with sqlite3.connect(tmp_path / store.DB_NAME) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_success_failure_timeout_and_recovery() -> None:
    job, kinds = run_machine(started(T0), finished(T0, exit_status=1))
    assert (job.record.state, job.record.runs, job.record.failures) == (JobState.failed, 1, 1)
    assert kinds == [NotificationKind.failed]
    job, kinds = run_machine(started(T0), finished(T0, exit_status=124, timed_out=True),
                             started(T0 + 60), finished(T0 + 60))
    assert kinds == [NotificationKind.timed_out, NotificationKind.recovered]
    rec = job.record
    assert (rec.state, rec.runs, rec.failures, rec.timeouts) == (JobState.ok, 2, 1, 1)
    assert rec.last_success == T0 + 60 and rec.running_pid is None and not job.alarm


def test_recovered_only_after_a_problem_and_only_once() -> None:
    _, kinds = run_machine(started(T0), finished(T0), started(T0 + 9), finished(T0 + 9))
    assert kinds == []
    _, kinds = run_machine(finished(T0, 1), finished(T0 + 5), finished(T0 + 9))
    assert kinds == [NotificationKind.failed, NotificationKind.recovered]


def test_overlap_and_out_of_order_events() -> None:
    holder = started(T0, pid=10)
    overlap = Overlapped(new_event_id(), KEY.name, T0 + 5, 11, holder_pid=10)
    job, kinds = run_machine(holder, overlap)
    assert (job.record.state, job.record.overlaps, job.record.running_pid) == (
        JobState.overlapped, 1, 10)
    assert kinds == [NotificationKind.overlapped]
    # a finish that arrived live before its spooled start: the late start changes nothing
    job, _ = run_machine(finished(T0), started(T0))
    assert (job.record.state, job.record.runs) == (JobState.ok, 1)
    # an old run's spooled finish does not overwrite the newer run's outcome
    job, _ = run_machine(finished(T0 + 100), finished(T0, exit_status=3))
    assert (job.record.state, job.record.runs, job.record.failures) == (JobState.ok, 2, 1)
    assert job.record.last_start == T0 + 100
    # an earlier run finishing while a newer one runs leaves the row running
    job, _ = run_machine(started(T0, pid=10), started(T0 + 50, pid=20), finished(T0, pid=10))
    assert (job.record.state, job.record.running_pid, job.record.runs) == (
        JobState.running, 20, 1)


def test_started_sets_next_expected_from_the_cadence() -> None:
    job, _ = run_machine(started(T0, cadence=Cadence(schedule="*/5 * * * *")))
    assert job.record.next_expected == schedule.next_after(Cadence(schedule="*/5 * * * *"), T0)
    job, _ = run_machine(started(T0, cadence=Cadence(every=90)))
    assert job.record.next_expected == T0 + 90
    assert schedule.next_after(Cadence(schedule="@hourly"), 3600 * 10 + 1) == 3600 * 11


def test_watch_rules() -> None:
    config = Config(timeout_slack=10)
    cadence = Cadence(every=600, grace=60)
    job = Job(JobRecord(KEY, "alice", state=JobState.ok, next_expected=T0), cadence)
    assert check(job, cadence, T0 + 59, config, False) == (job, [])
    missed, kinds = check(job, cadence, T0 + 61, config, False)
    assert (missed.record.state, missed.record.misses, kinds) == (
        JobState.missed, 1, [NotificationKind.missed])
    assert missed.record.next_expected == T0 + 600  # the next slot on the job's grid
    assert check(missed, cadence, T0 + 62, config, False) == (missed, [])
    running = Job(JobRecord(KEY, "alice", state=JobState.running, last_start=T0, running_pid=5),
                  Cadence(timeout=30))
    assert check(running, running.cadence, T0 + 39, config, False) == (running, [])
    over, kinds = check(running, running.cadence, T0 + 41, config, False)
    assert (over.record.state, kinds) == (JobState.overrunning, [NotificationKind.overrunning])
    assert check(over, over.cadence, T0 + 50, config, False) == (over, [])
    lost, kinds = check(over, over.cadence, T0 + 50, config, True)
    assert (lost.record.state, lost.record.running_pid, kinds) == (
        JobState.wrapperLost, 5, [NotificationKind.wrapper_lost])
    assert check(over, Cadence(), T0 + 10**6, config, False)[0].record.misses == 0


def test_default_grace_is_a_fraction_of_short_periods() -> None:
    from cronwrap.agent.watch import grace_for
    config = Config(default_grace=300, grace_fraction=0.5)
    assert grace_for(Cadence(every=60), T0, config) == 30
    assert grace_for(Cadence(schedule="@daily"), T0, config) == 300
    assert grace_for(Cadence(every=60, grace=7), T0, config) == 7


class Recorder:
    def __init__(self) -> None:
        self.changed: list[JobRecord] = []
        self.removed: list[JobKey] = []
        self.stats: list[AgentStats] = []

    def job_changed(self, record: JobRecord) -> None:
        self.changed.append(record)

    def job_removed(self, key: JobKey) -> None:
        self.removed.append(key)

    def stats_changed(self, stats: AgentStats) -> None:
        self.stats.append(stats)


def test_core_listeners_notifications_and_cap(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = AgentCore(Store(tmp_path), Config(max_jobs_per_owner=1))
        writer = asyncio.create_task(core.run())
        queue = core.notifications.subscribe()
        await core.submit(KEY.owner_uid, "alice", finished(T0, exit_status=1))
        late = Recorder()
        core.add_listener(late)  # replays the current row and stats at once
        assert [r.failures for r in late.changed] == [1] and late.stats[-1].job_count == 1
        await asyncio.gather(*(core.submit(KEY.owner_uid, "alice", finished(T0 + i))
                               for i in range(1, 6)))
        assert late.changed[-1].runs == 6 and late.stats[-1].events_accepted == 6
        kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
        assert kinds == [NotificationKind.failed, NotificationKind.recovered]
        with pytest.raises(Rejected, match="job limit reached"):
            await core.submit(KEY.owner_uid, "alice", started(T0)._replace(job="other"))
        core.reject()
        await core.submit(KEY.owner_uid, "alice", finished(T0 + 10))
        assert core.stats().events_rejected == 2
        assert core.stats().rows_refused == 1  # the job limit's refusal, counted apart
        writer.cancel()

    asyncio.run(scenario())
    again = Store(tmp_path)
    assert again.load_counters() == {"events_accepted": 7, "events_rejected": 2,
                                     "cron_log_entries": 0, "rows_refused": 1}
    assert again.load_jobs()[KEY].record.runs == 7


def test_clock_jump_rebases_instead_of_missing(tmp_path: Path) -> None:
    wall = [T0]
    mono = [100.0]

    async def scenario() -> list[JobRecord]:
        core = AgentCore(Store(tmp_path), Config(), clock=lambda: wall[0])
        writer = asyncio.create_task(core.run())
        await core.submit(1, "alice", started(T0, cadence=Cadence(every=60, grace=10)))
        await core.submit(1, "alice", finished(T0))
        watcher = Watcher(core, core.config, wall=lambda: wall[0], mono=lambda: mono[0])
        await watcher.tick()
        wall[0] += 3600  # the wall clock jumps an hour; only one second really passed
        mono[0] += 1
        await watcher.tick()
        rebased = core.records()[0]
        wall[0] += 100  # then a real miss
        mono[0] += 100
        await watcher.tick()
        writer.cancel()
        return [rebased, core.records()[0]]

    rebased, later = asyncio.run(scenario())
    assert rebased.state == JobState.ok and rebased.misses == 0
    assert rebased.next_expected == T0 + 3600 + 60
    assert later.state == JobState.missed and later.misses == 1


def test_config_file_and_passthrough_sections(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("# comment\n[agent]\nwatch_interval = 2\nspool_dir = '/s'\n"
                    "[snmp]\ncontact = 'ops@example.org'\n")
    config = load(path)
    assert config.watch_interval == 2.0 and config.spool_dir == "/s"
    assert config.sections == {"snmp": {"contact": "ops@example.org"}}
    path.write_text("[agentx]\nsocket = '/var/agentx/master'\n")
    with pytest.raises(ConfigError, match=r"unknown table \[agentx\]"):
        load(path)
    path.write_text("[agent]\nwatch_interval = true\n")
    with pytest.raises(ConfigError, match="watch_interval"):
        load(path)


def test_crontab_command_parsing() -> None:
    assert schedule.job_name_in("/usr/bin/cronwrap -n a1 -- x") == "a1"
    assert schedule.job_name_in("cronwrap --timeout 5 --name b -- x") == "b"
    assert schedule.job_name_in("cd /x && cronwrap --name=c.d -- y") == "c.d"
    assert schedule.job_name_in("cronwrap -nshort -- y") == "short"
    assert schedule.job_name_in("cronwrap -- /opt/bin/mycmd -n notme") == "mycmd"  # derived
    assert schedule.job_name_in("cronwrap -n ../evil -- y") is None
    assert schedule.job_name_in("echo cronwrap-ish -n x") is None


class FailingStore(Store):
    """A real store whose commits can be made to fail like a full or broken disk."""

    failing = True

    def commit(self, *args: object, **kwargs: object) -> None:
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        super().commit(*args, **kwargs)  # type: ignore[arg-type]


def test_failed_commit_applies_and_acks_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = FailingStore(tmp_path)
        core = AgentCore(db, Config())
        writer = asyncio.create_task(core.run())
        event = finished(T0, exit_status=1)
        with pytest.raises(Unavailable):
            await core.submit(1, "alice", event)
        assert core.records() == [] and core.stats().events_accepted == 0
        db.failing = False
        pending = [asyncio.ensure_future(core.submit(1, "alice", e))
                   for e in (event, event, finished(T0 + 5))]
        await asyncio.sleep(0)
        core.stop()  # what was queued before stop() is still committed and answered
        await writer
        await asyncio.gather(*pending)
        assert [r.runs for r in core.records()] == [2]
        assert core.stats().events_accepted == 2

    asyncio.run(scenario())


def test_commit_on_a_full_database_raises_the_real_cause(tmp_path: Path) -> None:
    db = Store(tmp_path)
    pages = db._db.execute("PRAGMA page_count").fetchone()[0]
    db._db.execute(f"PRAGMA max_page_count={pages}")  # SQLITE_FULL, like a full disk
    jobs = [Job(JobRecord(JobKey(0, f"job{i}"), "root", last_log_path="x" * 3000))
            for i in range(50)]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        db.commit(jobs, [], [], {"events_accepted": 50})
    db._db.execute("PRAGMA max_page_count=1073741823")
    db.commit(jobs, [], [], {"events_accepted": 50})  # the connection is still usable
    assert len(db.load_jobs()) == 50


def test_a_storage_outage_is_logged_once_and_its_end_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        db = FailingStore(tmp_path)
        core = AgentCore(db, Config())
        writer = asyncio.create_task(core.run())
        for _ in range(5):
            with pytest.raises(Unavailable):
                await core.submit(1, "alice", finished(T0))
        db.failing = False
        await core.submit(1, "alice", finished(T0))
        await core.submit(1, "alice", finished(T0 + 5))
        core.stop()
        await writer

    caplog.set_level("INFO", logger="cronwrap.agent.core")
    asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "cronwrap.agent.core"]
    assert len(lines) == 2, lines
    assert "cannot commit" in lines[0] and "disk I/O error" in lines[0]
    assert "works again" in lines[1]


def test_the_wal_stays_small_so_a_nearly_full_disk_can_recover(tmp_path: Path) -> None:
    db = Store(tmp_path)
    for i in range(300):  # one durable commit per event, as a spool drain does
        job = Job(JobRecord(JobKey(0, f"job{i % 7}"), "root", runs=i))
        db.commit([job], [], [(f"{i:032x}", float(i), 1000)], {"events_accepted": i})
    assert (tmp_path / "agent.db-wal").stat().st_size <= store.WAL_SIZE_LIMIT
    assert len(db.load_jobs()) == 7


def test_a_drains_coalesced_late_notification_carries_the_newest_run_and_the_latest_row() -> None:
    late = LateNotifications(per_job=1)
    runs = [T0 + 30, T0 + 90, T0 + 10, T0 + 60]  # the drain takes spool files in no time order
    for count, run in enumerate(runs, start=1):
        row = JobRecord(KEY, "alice", runs=count, failures=count)
        admitted = late.admit(Notification(NotificationKind.failed, row, T0 + 100, late=True,
                                           run_time=run, exit_status=count))
        assert admitted == (count == 1)
    [held] = late.flush()
    assert (held.run_count, held.run_time, held.exit_status) == (3, T0 + 90, 2)
    assert held.job.failures == 4
    assert late.flush() == []
