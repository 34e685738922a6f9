"""cron's log as a source, without a journal: the line parser, the crontab naming rule, and the
application of lines recorded from a real Debian cron (-L 15) to rows, split at every point.

tests/data/debian-cron-L15.jsonl is `journalctl -o json` of a real /usr/sbin/cron -f -L 15
(cron 3.0pl1-162, Debian 12) run in a private mount namespace with a private journald:
@reboot, ok, failing and signalled jobs of root and of the user cwcronlog, a wrapped line
whose cronwrap does not exist, a job still running while cron was killed and restarted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
from cronwrap.agent.config import Config, ConfigError, load
from cronwrap.agent.core import AgentCore
from cronwrap.agent.lifeevents import RunReported
from cronwrap.agent.linenames import LineJob, legacy_name, line_job, logged_command, printable
from cronwrap.agent.model import JobKey, JobRecord, JobSource, JobState, NotificationKind
from cronwrap.agent.sources import cronlines, cronlog, crontabs
from cronwrap.agent.sources.cronlines import JobEnded, JobFailed, JobStarted, parse
from cronwrap.agent.sources.cronlog import CronLog, SourceState
from cronwrap.agent.sources.journal import Entry, Place, entry_from_fields
from cronwrap.agent.store import Store
from cronwrap.wrapper.events import Started

RECORDING = Path(__file__).with_name("data") / "debian-cron-L15.jsonl"
USERS = {"root": 0, "cwcronlog": 1004, "flooder": 2001}
CWCRONLOG, FLOODER = USERS["cwcronlog"], USERS["flooder"]


def recorded() -> list[dict[str, str]]:
    return [json.loads(line) for line in RECORDING.read_text().splitlines()]


def recorded_entries() -> list[Entry]:
    """The entries the agent's journal match (SYSLOG_IDENTIFIER=CRON, _UID=0) returns."""
    return [entry_from_fields(fields) for fields in recorded()
            if fields["SYSLOG_IDENTIFIER"] == "CRON" and fields["_UID"] == "0"]


T = TypeVar("T")


def by_line(rows: dict[JobKey, JobRecord]) -> dict[tuple[int, str | None], JobRecord]:
    """Rows by (owner uid, the command of their crontab line): how a test finds the row of a
    line without restating the naming rule (tests/test_linenames_unit.py tests that)."""
    return {(key.owner_uid, record.command_line): record for key, record in rows.items()}


# ---- the parser -------------------------------------------------------------------------------


def test_every_recorded_message_is_understood_or_ignored() -> None:
    parsed = [(e.message, parse(e.message)) for e in recorded_entries()]
    kinds = {type(line).__name__ for _, line in parsed if line is not None}
    assert kinds == {"JobStarted", "JobEnded", "JobFailed", "OutputLost"}
    ignored = {message.split(":")[0] for message, line in parsed if line is None}
    assert ignored == {"pam_unix(cron", "pam_limits(cron"}  # sessions
    starts = [line for _, line in parsed if isinstance(line, JobStarted)]
    ends = [line for _, line in parsed if isinstance(line, JobEnded)]
    assert len(starts) == len(ends) == 13
    assert {(s.user, s.pid, s.command) for s in starts} == {(e.user, e.pid, e.command)
                                                            for e in ends}


@pytest.mark.parametrize(("message", "line"), [
    ("(root) CMD ([29827] /usr/local/bin/backup)",
     JobStarted("root", "/usr/local/bin/backup", 29827)),
    ("(root) END ([29827] /usr/local/bin/backup)",
     JobEnded("root", "/usr/local/bin/backup", 29827)),
    ("(CRON) error (grandchild #29827 failed with exit status 3)", JobFailed(29827, status=3)),
    ("(CRON) error (grandchild #16779 terminated by signal 11)", JobFailed(16779, signal=11)),
    ("(CRON) error (grandchild #16780 terminated by signal 6, dumped core)",
     JobFailed(16780, signal=6)),
    ("(root) CMD (/usr/local/bin/backup)", JobStarted("root", "/usr/local/bin/backup", None)),
    # a command may hold anything, parentheses and cron's own words included
    ("(alice) CMD ([7] echo ') END ([8] x')", JobStarted("alice", "echo ') END ([8] x'", 7)),
    ("(alice) CMD ([7] )", JobStarted("alice", "", 7)),
    ("(CRON) INFO (pidfile fd = 3)", None),
    ("(CRON) INFO (Running @reboot jobs)", None),
    ("(CRON) info (No MTA installed, discarding output)", cronlines.OutputLost()),
    ("(root) MAIL (mailed 12 bytes of output but got status 0x0001 from MTA)",
     cronlines.OutputLost()),
    ("(root) MAIL (mailed 12 bytes of output, status 0x0001 from MTA)", None),
    ("pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", None),
    ("(root) END (/usr/local/bin/backup)", None),  # without a pid: cannot be paired
    ("(CRON) error (grandchild #x failed with exit status 3)", None),
])
def test_parse(message: str, line: cronlines.CronLine | None) -> None:
    assert parse(message) == line


# ---- the naming rule --------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "logged"), [
    ("/usr/local/bin/backup --full", "/usr/local/bin/backup --full"),
    ("mail -s hi root%line one%line two", "mail -s hi root"),  # the rest is the job's input
    (r"date +\%F > /tmp/d", "date +%F > /tmp/d"),
    (r"echo a\\b", "echo a\\b"),
    (r"echo a\nb", r"echo a\nb"),
    ("printf 'a\tb'  ", "printf 'a^Ib'  "),  # trailing blanks are the command's
    ("echo bäh", "echo b\\303\\244h"),
    ("echo \x7f", "echo ^?"),
    ("x" * 2000, "x" * 960),
])
def test_logged_command_is_what_cron_logs(command: str, logged: str) -> None:
    assert logged_command(command) == logged


def test_printable_matches_the_recording() -> None:
    commands = {parse(e.message).command for e in recorded_entries()  # type: ignore[union-attr]
                if isinstance(parse(e.message), JobStarted)}
    assert "sh -c 'exit 3'" in commands and all(printable(c.encode()) == c for c in commands)


@pytest.mark.parametrize(("command", "job"), [
    ("/usr/bin/cronwrap -n nightly -- /usr/local/bin/backup", LineJob("nightly", True)),
    ("cd / && cronwrap -- /usr/local/bin/backup --full", LineJob("backup", True)),
    ("/nonexistent/cronwrap -n broken -- true", LineJob("broken", True)),
    ("/usr/local/bin/backup  # cronwrap-name=nightly-backup", LineJob("nightly-backup", False)),
    # not a job name: a plain line, which the core names
    ("/usr/local/bin/backup #cronwrap-name=../evil", LineJob(None, False)),
    ("/usr/local/bin/backup", LineJob(None, False)),
    ("cd / && run-parts --report /etc/cron.hourly", LineJob(None, False)),
    ("LANG=C MAILTO=x /opt/sync.sh", LineJob(None, False)),
])
def test_line_job(command: str, job: LineJob) -> None:
    assert line_job(logged_command(command)) == job


def test_discovery_names_plain_lines_as_cron_logs_them(tmp_path: Path) -> None:
    """Every line of the recorded run, written into crontabs, is discovered under the name
    its logged command gives (the recording's own CMD lines)."""
    starts = [line for line in map(parse, (e.message for e in recorded_entries()))
              if isinstance(line, JobStarted) and line.user == "root"]
    etc = tmp_path / "etc"
    etc.mkdir()
    lines = sorted({start.command for start in starts} - {"echo rebooted"})
    (etc / "crontab").write_text("SHELL=/bin/sh\n" + "".join(
        f"*/5 *\t* * *   root\t{command}\n" for command in lines) + "@reboot root echo rebooted\n")
    found = crontabs.discover(tmp_path, plain_lines=True)
    assert sorted(d.command_line or "" for d in found) == lines  # as cron logs them
    assert all(d.schedule == "*/5 * * * *" for d in found)
    assert [(d.key.name, d.source) for d in found if d.key.name] == [
        ("broken", JobSource.wrapper)]
    assert {d.source for d in found if not d.key.name} == {JobSource.cron_log}
    wrapped_only = crontabs.discover(tmp_path)
    assert [d.key.name for d in wrapped_only] == ["broken"]

    async def adopted() -> tuple[dict[JobKey, JobRecord], list[JobKey]]:
        life = Life(tmp_path / "state", Config())
        writer = asyncio.create_task(life.core.run())
        await life.core.set_discovered(found)
        # cron's log names each line's runs by the row the scan gave it
        keys = await life.core.update(lambda txn: [life.core.plain_line_key(txn, 0, line)
                                                   for line in lines if "cronwrap" not in line])
        life.core.stop()
        await writer
        return {key: job.record for key, job in life.core.jobs().items()}, keys

    rows, keys = asyncio.run(adopted())
    assert [rows[key].command_line for key in keys] == [c for c in lines if "cronwrap" not in c]
    assert len(set(keys)) == len(keys)  # one row per line


# ---- applying the recording ------------------------------------------------------------------


class Life:
    """One life of an agent: a core on `state_dir`'s database and the cron-log applier."""

    def __init__(self, state_dir: Path, config: Config) -> None:
        self.config = config
        self.now = 0.0
        state_dir.mkdir(parents=True, exist_ok=True)
        self.core = AgentCore(Store(state_dir), config, clock=lambda: self.now)
        self.cron_log = CronLog(self.core, config, user_id=USERS.get)
        self.notifications = self.core.notifications.subscribe()

    def state(self) -> SourceState:
        saved = self.core.source_state(cronlog.NAME)
        return SourceState(Place()) if saved is None else SourceState.from_json(saved)

    async def apply(self, entries: list[Entry], now: float) -> None:
        self.now = now
        state = self.state()
        await self.core.update(lambda batch: self.cron_log.apply(batch, state, entries, now))

    def kinds(self) -> list[tuple[str, NotificationKind]]:
        out = []
        while not self.notifications.empty():
            notification = self.notifications.get_nowait()
            out.append((notification.job.key.name, notification.kind))
        return out


async def run_lives(state_dir: Path, splits: list[int], config: Config
                    ) -> tuple[dict[JobKey, JobRecord], list[tuple[str, NotificationKind]], int]:
    """Apply the recording in one life per slice (each resuming at the saved cursor), then
    let the verdicts fall due; the rows, the notifications and cronLogEntries at the end."""
    entries = recorded_entries()
    cursors = [e.cursor for e in entries]
    end = entries[-1].time
    kinds: list[tuple[str, NotificationKind]] = []
    for stop in [*splits, len(entries)]:
        life = Life(state_dir, config)
        writer = asyncio.create_task(life.core.run())
        place = life.state().place
        start = 0 if place.cursor is None else cursors.index(place.cursor) + 1
        await life.apply(entries[start:stop], entries[max(stop - 1, 0)].time)
        kinds += life.kinds()
        if stop == len(entries):
            await life.apply([], end + 2 * config.spool_interval)  # the verdicts are due
            kinds += life.kinds()
            # counters_since is when the agent made the row: the life's clock, not a fact of
            # the lines
            rows = {job.record.key: replace(job.record, counters_since=None)
                    for job in life.core.jobs().values()}
            count = life.core.stats().cron_log_entries
        life.core.stop()
        await writer
    return rows, kinds, count


EXPECTED = {  # (owner uid, command): (runs, failures, last exit status, last signal)
    (0, "echo rebooted"): (1, 0, 0, 0),
    (0, "sh -c 'exit 3'"): (1, 1, 3, 0),
    (0, "sleep 100"): (1, 1, 143, 0),  # killed while cron restarted: the shell exited 143
    (0, "sh -c 'kill -TERM $$'"): (1, 1, 143, 0),
    (0, "/bin/true"): (1, 0, 0, 0),
    (0, "kill -SEGV $$"): (1, 1, 139, 11),
    (0, "ulimit -c unlimited; kill -ABRT $$"): (1, 1, 134, 6),
    (0, "kill -TERM $$"): (1, 1, 143, 15),
    (CWCRONLOG, "/bin/false"): (2, 2, 1, 0),
    (CWCRONLOG, "sleep 2; exit 0"): (2, 0, 0, 0),
}


def check_rows(rows: dict[JobKey, JobRecord]) -> None:
    want = dict(EXPECTED)
    want[(0, None)] = (1, 1, 127, 0)  # broken: a wrapped line's row is the wrapper's
    got = {line: (r.runs, r.failures, r.last_exit_status, r.last_signal)
           for line, r in by_line(rows).items()}
    assert got == want
    assert by_line(rows)[(0, None)].key.name == "broken"
    for key, record in rows.items():
        assert record.running_pid is None
        assert record.state == (JobState.failed if record.failures == record.runs else
                                JobState.ok)
        assert record.source == (JobSource.wrapper if key.name == "broken" else
                                 JobSource.cron_log)
    slow = by_line(rows)[(CWCRONLOG, "sleep 2; exit 0")]
    assert slow.last_duration_ms is not None and 1900 < slow.last_duration_ms < 2200
    broken = rows[JobKey(0, "broken")]
    assert broken.start_problem is not None and "cronwrap was not found" in broken.start_problem
    assert [(run.number, run.exit_status, run.result) for run in broken.history] == \
        [(1, 127, JobState.failed)]
    discarded = {key.name: r.outputs_discarded for key, r in rows.items() if r.outputs_discarded}
    assert discarded == {name_of(rows, line): count for line, count in discarded_by_line().items()}
    assert sum(discarded.values()) == 4
    false = by_line(rows)[(CWCRONLOG, "/bin/false")]
    assert [(run.number, run.exit_status) for run in false.history] == [(1, 1), (2, 1)]
    assert broken.last_start is not None and broken.last_duration_ms is not None


def discarded_by_line() -> Counter[tuple[int, str]]:
    """(owner uid, command) -> its runs whose output cron discarded, restated from the
    recording: the MTA line's _PID is the pid that logged the run's CMD."""
    started: dict[int, tuple[int, str]] = {}
    counts: Counter[tuple[int, str]] = Counter()
    for entry in recorded_entries():
        line = parse(entry.message)
        if isinstance(line, JobStarted):
            started[entry.pid] = (USERS[line.user], line.command)
        elif isinstance(line, cronlines.OutputLost):
            counts[started[entry.pid]] += 1
    return counts


def name_of(rows: dict[JobKey, JobRecord], line: tuple[int, str]) -> str:
    """The row of the crontab line: the name a wrapped line declares, else the plain line's."""
    declared = line_job(line[1]).name
    return declared if declared is not None else by_line(rows)[line].key.name


def expected_notifications(rows: dict[JobKey, JobRecord]) -> set[tuple[str, NotificationKind]]:
    failed = {(by_line(rows)[line].key.name, NotificationKind.failed)
              for line, counts in EXPECTED.items() if counts[1]}
    discarded = {(name_of(rows, line), NotificationKind.output_discarded)
                 for line in discarded_by_line()}
    return failed | discarded | {("broken", NotificationKind.not_started)}


def test_the_recording_applied_in_one_go(tmp_path: Path) -> None:
    rows, kinds, count = asyncio.run(run_lives(tmp_path, [], Config(spool_interval=1.0)))
    check_rows(rows)
    assert set(kinds) == expected_notifications(rows)
    assert len(kinds) == len(expected_notifications(rows)) + 1  # /bin/false failed twice
    # readable names, one per line, a CRC only where two lines would share one
    names = {line: by_line(rows)[line].key.name for line in EXPECTED}
    assert names[(0, "echo rebooted")] == "echo" and names[(0, "/bin/true")] == "true"
    assert names[(0, "ulimit -c unlimited; kill -ABRT $$")] == "ulimit"
    assert names[(CWCRONLOG, "/bin/false")] == "false"
    kills = [names[(0, line)] for line in ("kill -SEGV $$", "kill -TERM $$")]
    assert "kill" in kills and any(re.fullmatch(r"kill-[0-9a-f]{8}", n) for n in kills)
    assert count == sum(parse(e.message) is not None for e in recorded_entries())


def test_a_restart_at_any_line_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """The agent stops after every possible entry (between a CMD and its END, between an error
    line and its END, ...) and resumes at its committed cursor: the same rows, the same
    notifications, the same count of lines, as in one go."""
    config = Config(spool_interval=1.0)
    whole, whole_kinds, whole_count = asyncio.run(run_lives(tmp_path / "whole", [], config))
    for split in range(1, len(recorded_entries())):
        rows, kinds, count = asyncio.run(run_lives(tmp_path / str(split), [split], config))
        assert rows == whole, f"split after entry {split}"
        assert sorted(kinds, key=str) == sorted(whole_kinds, key=str), f"split {split}"
        assert count == whole_count


def test_a_wrapper_that_reported_the_run_is_not_judged_not_started(tmp_path: Path) -> None:
    """A wrapped line exiting 127 whose wrapper did start (its job's command was not found)
    is the wrapper's failure, counted once from its own events."""
    entries = [e for e in recorded_entries() if "14562" in e.message]
    start = entries[0].time

    async def scenario() -> JobRecord:
        life = Life(tmp_path, Config(spool_interval=1.0))
        writer = asyncio.create_task(life.core.run())
        await life.apply(entries, entries[-1].time)
        from cronwrap.wrapper.events import Finished, new_event_id
        await life.core.submit(0, "root", Finished(new_event_id(), "broken", start + 0.5, 99,
                                                   start_time=start + 0.1, exit_status=127,
                                                   duration_ms=10))
        await life.apply([], entries[-1].time + 5)
        life.core.stop()
        await writer
        return life.core.jobs()[JobKey(0, "broken")].record

    record = asyncio.run(scenario())
    assert (record.runs, record.failures, record.start_problem) == (1, 1, None)


def test_runs_of_an_earlier_boot_end_unknown(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """One outcome: unknown in the row, no run counted, no notification, one line saying so."""
    start = next(e for e in recorded_entries() if "CMD ([14555] sleep 100)" in e.message)
    reboot = Entry("other-cursor", start.time + 60, "b" * 32, "(root) CMD ([5] /bin/true)")
    ended = Entry("end", start.time + 61, "b" * 32, "(root) END ([5] /bin/true)")

    async def scenario() -> dict[str, JobRecord]:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply([start], start.time)
        rows = {key: job.record for key, job in life.core.jobs().items()}
        assert by_line(rows)[(0, "sleep 100")].state == JobState.running
        await life.apply([reboot, ended], ended.time)
        assert life.state().open_runs == {}
        life.core.stop()
        await writer
        return by_line({key: job.record for key, job in life.core.jobs().items()})

    rows = asyncio.run(scenario())
    sleeper = rows[(0, "sleep 100")]
    assert (sleeper.state, sleeper.runs, sleeper.running_pid) == (JobState.unknown, 0, None)
    assert rows[(0, "/bin/true")].runs == 1
    said = [r.getMessage() for r in caplog.records if "earlier boot" in r.getMessage()]
    assert len(said) == 1 and f"job {sleeper.key.name} of root started at " in said[0]
    assert said[0].endswith("its outcome is unknown (state unknown, no run counted)")


def test_a_wrapped_run_cut_by_a_reboot_has_its_wrappers_outcome(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The wrapper stopped at shutdown spools how its run ended (killed by SIGTERM): that is
    the run's one outcome, in the row and the notification; cron's log adds no "unknown"."""
    from cronwrap.wrapper.events import Finished, Started, new_event_id
    caplog.set_level(logging.INFO)
    start = Entry("c1", 1_800_000_000.0, "a" * 32, "(root) CMD ([100] cronwrap -n w -- sleep 1h)")
    reboot = Entry("c2", 1_800_000_600.0, "b" * 32, "(CRON) INFO (Running @reboot jobs)")

    async def scenario() -> tuple[JobRecord, list[tuple[str, NotificationKind]]]:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.core.submit(0, "root", Started(new_event_id(), "w", start.time + 0.1, 101))
        await life.apply([start], start.time)
        await life.apply([reboot], reboot.time)
        await life.core.submit(0, "root", Finished(
            new_event_id(), "w", start.time + 300, 101, start_time=start.time + 0.1,
            exit_status=143, signal=15, duration_ms=300_000), late=True)
        life.core.stop()
        await writer
        return life.core.jobs()[JobKey(0, "w")].record, life.kinds()

    record, kinds = asyncio.run(scenario())
    assert (record.state, record.runs, record.last_exit_status, record.last_signal) == (
        JobState.failed, 1, 143, 15)
    assert kinds == [("w", NotificationKind.failed)]
    assert "outcome is unknown" not in caplog.text and "earlier boot" not in caplog.text


def test_starts_without_pids_note_the_start_only(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """cron's default -L 1: each start is noted (so misses are seen), nothing more; the
    agent says once how to learn more."""
    first = Entry("c1", 1_800_000_000.0, "a" * 32, "(root) CMD (/usr/local/bin/backup)")
    second = Entry("c2", 1_800_000_060.0, "a" * 32, "(root) CMD (/usr/local/bin/backup)")

    async def scenario() -> JobRecord:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply([first], first.time)
        await life.apply([second], second.time)
        life.core.stop()
        await writer
        assert life.state().starts_seen
        return life.core.jobs()[JobKey(0, "backup")].record

    record = asyncio.run(scenario())
    assert (record.runs, record.state, record.last_start) == (0, JobState.unknown, second.time)
    hints = [r for r in caplog.records if 'EXTRA_OPTS="-L 15"' in r.getMessage()]
    assert len(hints) == 1


def test_lines_of_unknown_users_are_skipped(tmp_path: Path) -> None:
    lines = [Entry("c1", 1.0, "a" * 32, "(ghost) CMD ([5] /bin/true)"),
             Entry("c2", 2.0, "a" * 32, "(ghost) END ([5] /bin/true)")]

    async def scenario() -> int:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply(lines, 2.0)
        life.core.stop()
        await writer
        assert life.state().place == Place(cursor="c2")
        return len(life.core.jobs())

    assert asyncio.run(scenario()) == 0


def test_an_entry_that_fails_to_apply_is_skipped_and_the_lines_after_it_count(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An internal error on one line (a lone surrogate, which the journal reader never gives
    today, fails the command's printable form) skips that line with one escaped log line; the
    batch is committed and the next run counts, where the batch used to fail for ever."""
    lines = [Entry("c1", 1.0, "a" * 32, "(cwcronlog) CMD ([5] /bin/echo \ud800)"),
             *cron_lines([("cwcronlog", 6, "CMD /bin/true"), ("cwcronlog", 6, "END /bin/true")],
                         first=2)]

    async def scenario() -> dict[str, int]:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply(lines, 1_800_000_010.0)
        life.core.stop()
        await writer
        assert life.state().place == Place(cursor="c3")
        return {key.name: job.record.runs for key, job in life.core.jobs().items()}

    runs = asyncio.run(scenario())
    assert list(runs.values()) == [1], runs
    skipped = [r.getMessage() for r in caplog.records if "entry not applied" in r.getMessage()]
    assert len(skipped) == 1 and "\\ud800" in skipped[0], skipped


# ---- open runs: one user's flood of runs that never end pushes out only their own ----------


def cron_lines(lines: list[tuple[str, int, str]], first: int = 0) -> list[Entry]:
    """Entries of cron's log, one a second: (user, pid, what) with what "CMD command",
    "END command" or "exit N" (the job's non-zero exit status)."""
    out = []
    for number, (user, pid, what) in enumerate(lines, start=first):
        verb, _, rest = what.partition(" ")
        message = (f"(CRON) error (grandchild #{pid} failed with exit status {rest})"
                   if verb == "exit" else f"({user}) {verb} ([{pid}] {rest})")
        out.append(Entry(f"c{number}", 1_800_000_000.0 + number, "a" * 32, message))
    return out


def flood(count: int, first_pid: int, first: int) -> list[Entry]:
    """A crontab of `count` lines `* * * * * sleep 1d`, started in one minute."""
    return cron_lines([("flooder", first_pid + n, "CMD sleep 1d") for n in range(count)], first)


def open_by_owner(life: Life) -> dict[int, int]:
    counts: dict[int, int] = {}
    for run in life.state().open_runs.values():
        counts[run.uid] = counts.get(run.uid, 0) + 1
    return counts


def test_a_flood_of_open_runs_pushes_out_only_the_flooders_own(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """10,001 runs of one user that never end: the victim's run, started first, still gets its
    end and exit status; the flooder keeps max_jobs_per_owner open runs; one line says so."""
    started = cron_lines([("cwcronlog", 7, "CMD sh -c 'exit 3'")])
    ended = cron_lines([("cwcronlog", 7, "exit 3"), ("cwcronlog", 7, "END sh -c 'exit 3'")],
                       first=20_000)

    async def scenario() -> tuple[dict[int, int], JobRecord]:
        life = Life(tmp_path, Config())
        writer = asyncio.create_task(life.core.run())
        await life.apply(started, started[0].time)
        for batch in range(11):  # batches of cronlog.READ_LIMIT, as the follower reads them
            lines = flood(1000 if batch < 10 else 1, 1000 + batch * 1000, 1 + batch * 1000)
            await life.apply(lines, lines[-1].time)
        await life.apply(ended, ended[-1].time)
        counts = open_by_owner(life)
        rows = by_line({key: job.record for key, job in life.core.jobs().items()})
        life.core.stop()
        await writer
        return counts, rows[(CWCRONLOG, "sh -c 'exit 3'")]

    counts, victim = asyncio.run(scenario())
    assert (victim.runs, victim.failures, victim.last_exit_status) == (1, 1, 3)
    assert counts == {FLOODER: Config().max_jobs_per_owner}
    said = [r.getMessage() for r in caplog.records if "open runs pushed out" in r.getMessage()]
    assert len(said) == 1 and f"uid {FLOODER}: 1000 of its jobs started without an end" \
        in said[0]
    assert "sleep" not in said[0]  # a class of problem and a uid, not the user's text


def test_a_full_table_pushes_out_the_runs_of_the_owner_holding_most(tmp_path: Path) -> None:
    """With room for 10 open runs of all users and 8 of one: root's and the victim's runs stay
    open while the flooder has any, whoever starts the run that finds the table full."""
    others = cron_lines([("cwcronlog", 7, "CMD sleep 1h"),
                         *[("root", 100 + n, "CMD sleep 2h") for n in range(3)]])
    more = cron_lines([("root", 200, "CMD sleep 2h"), ("flooder", 300, "CMD sleep 1d")],
                      first=100)
    seen = []

    async def scenario() -> None:
        life = Life(tmp_path, Config(max_jobs_per_owner=8, max_open_runs=10))
        writer = asyncio.create_task(life.core.run())
        await life.apply(others, others[-1].time)
        for lines in (flood(6, 1000, 10), more, flood(5, 2000, 200)):
            await life.apply(lines, lines[-1].time)
            seen.append(open_by_owner(life))
        life.core.stop()
        await writer

    asyncio.run(scenario())
    assert seen == [
        {CWCRONLOG: 1, 0: 3, FLOODER: 6},  # full
        {CWCRONLOG: 1, 0: 4, FLOODER: 5},  # root's new run pushed out the flooder's oldest
        {CWCRONLOG: 1, 0: 4, FLOODER: 5},  # the flooder's new runs push out its own
    ]


def test_cron_log_settings() -> None:
    assert Config().cron_log == "on" and Config().cron_log_journal == ""


def test_cron_log_setting_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[agent]\ncron_log = "maybe"\n')
    with pytest.raises(ConfigError, match="cron_log must be one of on, off"):
        load(path)
    path.write_text('[agent]\ncron_log = "off"\ncron_log_journal = "/var/log/journal"\n')
    assert load(path).cron_log == "off"


def test_the_open_runs_of_all_users_are_a_checked_setting(tmp_path: Path) -> None:
    """max_open_runs: 10,000 by default, a positive integer in the file."""
    assert Config().max_open_runs == 10000
    path = tmp_path / "agent.toml"
    path.write_text("[agent]\nmax_open_runs = 0\n")
    with pytest.raises(ConfigError, match="max_open_runs must be a positive integer"):
        load(path)
    path.write_text("[agent]\nmax_open_runs = 20000\n")
    assert load(path).max_open_runs == 20000


def test_rows_an_older_agent_named_keep_their_names(tmp_path: Path) -> None:
    """A row named PROGRAM-CRC before readable names, whose line it never knew, is that line's
    when the scan sees it: no second row; a line new to the agent gets its readable name; after
    a restart cron's log names the line's runs by the old row."""
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "crontab").write_text("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
                                 "25 6 * * * root test -x /usr/sbin/anacron || { cd / && "
                                 "run-parts --report /etc/cron.daily; }\n")
    found = crontabs.discover(tmp_path / "root", plain_lines=True)
    hourly, daily = (d.command_line or "" for d in found)
    old = JobKey(0, legacy_name(hourly))  # cd-6c39522d, as Debian's hosts had it
    assert old.name.startswith("cd-")
    older_agent = RunReported(old, "root", Started(id="", job=old.name, time=1.0, pid=5),
                              source=JobSource.cron_log)  # its row: a run, no line
    assert life_of(tmp_path, lambda core: core.update(lambda txn: txn.submit(older_agent)))[0] \
        == {old.name: None}
    rows, _ = life_of(tmp_path, lambda core: core.set_discovered(found))
    assert rows == {old.name: hourly, "cron-daily": daily}
    rows, key = life_of(tmp_path, lambda core: core.update(
        lambda txn: core.plain_line_key(txn, 0, hourly)))
    assert key == old and len(rows) == 2


def life_of(tmp_path: Path, apply: Callable[[AgentCore], Awaitable[T]]
            ) -> tuple[dict[str, str | None], T]:
    """One life of an agent on tmp_path/state doing `apply`: its rows' lines by name after it,
    and what `apply` gave."""
    async def life() -> tuple[dict[str, str | None], T]:
        lived = Life(tmp_path / "state", Config())
        writer = asyncio.create_task(lived.core.run())
        result = await apply(lived.core)
        lived.core.stop()
        await writer
        return {k.name: job.record.command_line for k, job in lived.core.jobs().items()}, result

    return asyncio.run(life())
