"""Durable agent state in SQLite (WAL, synchronous=FULL): job rows, applied event ids, counters."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from cronwrap.wrapper.events import (
    MAX_MESSAGE_CHARS,
    MAX_PATH_CHARS,
    MAX_PROBLEM_CHARS,
    MAX_SCHEDULE_CHARS,
    Cadence,
    safe_text,
)

from .linenames import IDENTITY_CHARS
from .model import (
    RESULTS,
    BoundKind,
    DurationStats,
    JobKey,
    JobRecord,
    JobSource,
    JobState,
    RunRecord,
)

DB_NAME = "agent.db"
WAL_CHECKPOINT_PAGES = 100
WAL_SIZE_LIMIT = 1 << 20

MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE jobs (
        owner_uid INTEGER NOT NULL,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        runs INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        overlaps INTEGER NOT NULL DEFAULT 0,
        timeouts INTEGER NOT NULL DEFAULT 0,
        misses INTEGER NOT NULL DEFAULT 0,
        last_exit_status INTEGER,
        last_signal INTEGER NOT NULL DEFAULT 0,
        last_start REAL,
        last_success REAL,
        last_duration_ms INTEGER,
        state INTEGER NOT NULL,
        running_pid INTEGER,
        next_expected REAL,
        last_log_path TEXT,
        schedule TEXT,
        every REAL,
        grace REAL,
        timeout REAL,
        max_runtime REAL,
        last_end REAL,
        alarm INTEGER NOT NULL DEFAULT 0,
        reported INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (owner_uid, name)
    );
    CREATE TABLE applied (id TEXT PRIMARY KEY, time REAL NOT NULL);
    CREATE INDEX applied_time ON applied (time);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters VALUES ('events_accepted', 0), ('events_rejected', 0);
    """,
    # 2: why the last run could not write its log (NULL: it could).
    "ALTER TABLE jobs ADD COLUMN log_problem TEXT;",
    # 3: the zone a job's schedule is in (--tz, CRON_TZ); NULL: cron's own zone.
    "ALTER TABLE jobs ADD COLUMN tz TEXT;",
    # 4: a job's life: paused until when, the schedule its crontab line had, forgotten jobs.
    """
    ALTER TABLE jobs ADD COLUMN paused_until REAL;
    ALTER TABLE jobs ADD COLUMN crontab_schedule TEXT;
    ALTER TABLE jobs ADD COLUMN misses_in_a_row INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE forgotten (owner_uid INTEGER NOT NULL, name TEXT NOT NULL,
                            time REAL NOT NULL, PRIMARY KEY (owner_uid, name));
    """,
    # 5: the last outcome apart from activity (cronJobLastResult; NULL: derived from the row
    # at load) and when the row's counters started (cronJobCountersSince): for rows made
    # before, the upgrade's time, the first moment the agent can vouch for.
    """
    ALTER TABLE jobs ADD COLUMN last_result INTEGER;
    ALTER TABLE jobs ADD COLUMN counters_since REAL;
    UPDATE jobs SET counters_since = CAST(strftime('%s', 'now') AS REAL);
    """,
    # 6: where a row's runs come from (1 wrapper, 2 cron's log), why a wrapper did not start,
    # each event source's own durable state (cron's log: its journal cursor), committed with
    # the rows it changed, and the count of cron's log lines applied.
    """
    ALTER TABLE jobs ADD COLUMN source INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN start_problem TEXT;
    CREATE TABLE source_state (name TEXT PRIMARY KEY, state TEXT NOT NULL);
    INSERT INTO counters VALUES ('cron_log_entries', 0);
    """,
    # 7: each job's last finished runs (cronJobRunTable), at most [agent] run_history per job.
    """
    CREATE TABLE runs (
        owner_uid INTEGER NOT NULL,
        name TEXT NOT NULL,
        number INTEGER NOT NULL,
        start REAL NOT NULL,
        duration_ms INTEGER NOT NULL,
        exit_status INTEGER NOT NULL,
        signal INTEGER NOT NULL,
        result INTEGER NOT NULL,
        late INTEGER NOT NULL,
        PRIMARY KEY (owner_uid, name, number)
    );
    """,
    # 8: the last run's last line of output, when its job sends it (cronJobLastMessage).
    "ALTER TABLE jobs ADD COLUMN last_message TEXT;",
    # 9: the crontab a job's line was last seen in and, once that line is gone, why the job is
    # still expected (on its last line's schedule: cronJobLineGone).
    "ALTER TABLE jobs ADD COLUMN crontab TEXT; ALTER TABLE jobs ADD COLUMN line_gone TEXT;",
    # 10: new rows refused at max_jobs_per_owner, whatever the source (cronJobRowsRefused).
    "INSERT INTO counters VALUES ('rows_refused', 0);",
    # 11: whose event each remembered id is: at most [agent] event_ids_per_owner kept per owner
    # (ids kept before: owner -1, trimmed like any owner's).
    """
    ALTER TABLE applied ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT -1;
    CREATE INDEX applied_owner ON applied (owner_uid);
    """,
    # 12: runs judged by their duration (--min/--max-duration, --no-duration-baseline, the last
    # successful durations as space-separated milliseconds, oldest first) and the resources
    # a run used (CPU milliseconds, the largest process's peak RSS in KiB).
    """
    ALTER TABLE jobs ADD COLUMN min_duration REAL;
    ALTER TABLE jobs ADD COLUMN max_duration REAL;
    ALTER TABLE jobs ADD COLUMN duration_baseline INTEGER;
    ALTER TABLE jobs ADD COLUMN duration_sample TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN duration_anomalies INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN last_cpu_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN last_max_rss_kib INTEGER;
    ALTER TABLE runs ADD COLUMN cpu_ms INTEGER;
    ALTER TABLE runs ADD COLUMN max_rss_kib INTEGER;
    """,
    # 13: the command of the crontab line a job was last seen on, as cron logs it
    # (cronJobCommandLine; a plain line's identity: the name it was given stays with it).
    "ALTER TABLE jobs ADD COLUMN command_line TEXT;",
    # 14: why cron will never run a job's crontab line (cronJobIgnoredByCron).
    "ALTER TABLE jobs ADD COLUMN ignored_by_cron TEXT;",
    # 15: runs whose output cron discarded, having no MTA (cronJobOutputsDiscarded).
    "ALTER TABLE jobs ADD COLUMN outputs_discarded INTEGER NOT NULL DEFAULT 0;",
    # 16: only the ids of events in doubt (their retry may still come), each owner's its own:
    # keyed by (owner, id). Of the ids an older agent kept (every applied event's), those of
    # its last 10 minutes stay: a retry its last replies caused is drained within them.
    """
    CREATE TABLE applied_in_doubt (owner_uid INTEGER NOT NULL, id TEXT NOT NULL,
                                   time REAL NOT NULL, PRIMARY KEY (owner_uid, id));
    INSERT OR IGNORE INTO applied_in_doubt SELECT owner_uid, id, time FROM applied
        WHERE time >= (SELECT max(time) FROM applied) - 600;
    DROP TABLE applied;
    ALTER TABLE applied_in_doubt RENAME TO applied;
    CREATE INDEX applied_time ON applied (time);
    """,
    # 17: each job's duration statistics as last computed (cronJobDurationMin and the rest:
    # runs, minimum, median, maximum, low bound and its kind, high bound and its kind, "-" for
    # none) and what they were computed from besides the sample (Job.durations_under): a
    # restarted agent recomputes only those computed otherwise, not every job's before READY.
    """
    ALTER TABLE jobs ADD COLUMN durations TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN durations_under TEXT NOT NULL DEFAULT '';
    """,
]


@dataclass(frozen=True)
class Job:
    """A job row: the public record plus what the core needs to compute it."""

    record: JobRecord
    cadence: Cadence = Cadence()  # as declared by the last event
    last_end: float | None = None  # when the last applied run finished
    alarm: bool = False  # last outcome was failed/timedOut/missed: a success recovers
    reported: bool = False  # an event has been applied (not only learnt from a crontab)
    crontab_schedule: str | None = None  # the schedule its crontab line had when last seen
    misses_in_a_row: int = 0  # watcher passes that found it missed since its last event
    crontab: str | None = None  # the crontab its line was in when last seen
    # the last successful runs' durations (ms), oldest first: its learned duration bounds
    duration_sample: tuple[int, ...] = ()
    # what record.durations was computed from besides the sample (durations.inputs_of); "": not
    # computed from this job's sample and cadence yet
    durations_under: str = ""
    # not stored: the times of its last starts, and whether they are a burst already notified
    recent_starts: tuple[float, ...] = ()
    in_burst: bool = False


_RECORD_COLUMNS = (
    "owner", "runs", "failures", "overlaps", "timeouts", "misses", "last_exit_status",
    "last_signal", "last_start", "last_success", "last_duration_ms", "state", "running_pid",
    "next_expected", "last_log_path", "log_problem", "paused_until", "last_result",
    "counters_since", "last_message", "source", "start_problem", "line_gone",
    "duration_anomalies", "last_cpu_ms", "last_max_rss_kib",
    "command_line", "ignored_by_cron", "outputs_discarded",
)
_CADENCE_COLUMNS = ("schedule", "every", "grace", "timeout", "max_runtime", "tz", "min_duration",
                    "max_duration", "duration_baseline")
_COLUMNS = ("owner_uid", "name", *_RECORD_COLUMNS, *_CADENCE_COLUMNS, "last_end", "alarm",
            "reported", "crontab_schedule", "misses_in_a_row", "crontab", "duration_sample",
            "durations", "durations_under")


class Store:
    """One SQLite connection, used by one thread at a time (the core's single writer).

    When the database cannot be opened for writing (a full or failing disk), the store starts
    read-only: what the file holds is read into memory without writing a byte, `problem` says
    why, and every commit first tries to open the file for writing again; it raises until
    that works, so nothing is acknowledged that is not durable.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_NAME
        self.problem: str | None = None  # why the state is read-only; None: writable
        try:
            self._db = self._open_writable()
        except sqlite3.Error as exc:
            self._db = self._read_into_memory()
            self.problem = str(exc)

    def _open_writable(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # checkpoint every ~400 KiB instead of 4 MiB and trim the WAL back to 1 MiB after
            # one: on a nearly full disk the WAL must not need megabytes of room to move
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _read_into_memory(self) -> sqlite3.Connection:
        """A private in-memory copy of the database file (empty if there is none), migrated."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if self.path.exists():
            source = self._open_read_only()
            try:
                source.backup(memory)
            finally:
                source.close()
        _migrate(memory)
        return memory

    def _open_read_only(self) -> sqlite3.Connection:
        """Read with the WAL when SQLite can without writing; else the main file alone, which
        is the whole state unless a WAL holds commits (then refuse: they would be lost)."""
        uri = self.path.as_uri()
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error:
            wal = self.path.with_name(f"{DB_NAME}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)

    def close(self) -> None:
        self._db.close()

    def load_jobs(self) -> dict[JobKey, Job]:
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs").fetchall()
        jobs = {job.record.key: job for job in map(_job_from_row, rows)}
        histories: dict[JobKey, list[RunRecord]] = {}
        for uid, name, *run in self._db.execute(
                f"SELECT owner_uid, name, {', '.join(_RUN_COLUMNS)} FROM runs "
                "ORDER BY owner_uid, name, number"):
            number, start, duration_ms, exit_status, signal, result, late, cpu, rss = run
            histories.setdefault(JobKey(uid, name), []).append(RunRecord(
                number, start, duration_ms, exit_status, signal, JobState(result), bool(late),
                cpu, rss))
        for key, history in histories.items():
            if key in jobs:
                job = jobs[key]
                jobs[key] = replace(job, record=replace(job.record, history=tuple(history)))
        return jobs

    def load_counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def load_forgotten(self) -> dict[JobKey, float]:
        """When each forgotten job was forgotten (kept like applied ids, then pruned)."""
        rows = self._db.execute("SELECT owner_uid, name, time FROM forgotten").fetchall()
        return {JobKey(uid, name): at for uid, name, at in rows}

    def load_source_states(self) -> dict[str, str]:
        """Each event source's saved state (JSON text), by source name."""
        return dict(self._db.execute("SELECT name, state FROM source_state").fetchall())

    def load_applied(self, since: float) -> list[tuple[str, float, int]]:
        """The remembered event ids applied since `since`: (id, when, owner uid)."""
        rows = self._db.execute("SELECT id, time, owner_uid FROM applied WHERE time >= ?",
                                (since,))
        return rows.fetchall()

    def commit(self, jobs: Iterable[Job], removed: Iterable[JobKey],
               applied: Iterable[tuple[str, float, int]], counters: dict[str, int],
               prune_before: float | None = None,
               forgotten: Iterable[tuple[JobKey, float]] = (),
               source_states: dict[str, str] | None = None,
               dropped_ids: Iterable[tuple[int, str]] = ()) -> None:
        """Write one batch in one transaction; durable when this returns.

        `applied`: event ids to remember, (id, when, owner uid); `dropped_ids`: (owner uid, id)
        no longer remembered (settled, or pushed out by their owner's newer ones)."""
        jobs = list(jobs)
        if self.problem is not None:
            writable = self._open_writable()  # raises while the disk is still full
            self._db.close()
            self._db, self.problem = writable, None
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            marks = ", ".join("?" * len(_COLUMNS))
            db.executemany(f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({marks})",
                           [_row_from_job(job) for job in jobs])
            db.executemany("DELETE FROM jobs WHERE owner_uid = ? AND name = ?",
                           [(key.owner_uid, key.name) for key in removed])
            _write_histories(db, jobs, removed)
            db.executemany("INSERT OR IGNORE INTO applied (id, time, owner_uid) VALUES (?, ?, ?)",
                           applied)
            db.executemany("DELETE FROM applied WHERE owner_uid = ? AND id = ?", dropped_ids)
            db.executemany("INSERT OR REPLACE INTO forgotten VALUES (?, ?, ?)",
                           [(key.owner_uid, key.name, at) for key, at in forgotten])
            db.executemany("UPDATE counters SET value = ? WHERE name = ?",
                           [(value, name) for name, value in counters.items()])
            if prune_before is not None:
                db.execute("DELETE FROM applied WHERE time < ?", (prune_before,))
                db.execute("DELETE FROM forgotten WHERE time < ?", (prune_before,))
            db.executemany("INSERT OR REPLACE INTO source_state VALUES (?, ?)",
                           (source_states or {}).items())
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on e.g. a full disk
                db.execute("ROLLBACK")
            raise


_RUN_COLUMNS = ("number", "start", "duration_ms", "exit_status", "signal", "result", "late",
                "cpu_ms", "max_rss_kib")


def _write_histories(db: sqlite3.Connection, jobs: Iterable[Job],
                     removed: Iterable[JobKey]) -> None:
    """Make the runs table hold exactly each written job's history; none for removed jobs."""
    db.executemany("DELETE FROM runs WHERE owner_uid = ? AND name = ?",
                   [(key.owner_uid, key.name) for key in removed])
    marks = ", ".join("?" * (2 + len(_RUN_COLUMNS)))
    for job in jobs:
        key, history = job.record.key, job.record.history
        if history:
            kept = (key.owner_uid, key.name, history[0].number, history[-1].number)
            db.execute("DELETE FROM runs WHERE owner_uid = ? AND name = ? "
                       "AND (number < ? OR number > ?)", kept)
        else:
            db.execute("DELETE FROM runs WHERE owner_uid = ? AND name = ?",
                       (key.owner_uid, key.name))
        db.executemany(
            f"INSERT OR REPLACE INTO runs (owner_uid, name, {', '.join(_RUN_COLUMNS)}) "
            f"VALUES ({marks})",
            [(key.owner_uid, key.name, run.number, run.start, run.duration_ms, run.exit_status,
              run.signal, int(run.result), int(run.late), run.cpu_ms, run.max_rss_kib)
             for run in history])


def _migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")


def _row_from_job(job: Job) -> tuple[object, ...]:
    rec = job.record
    values = [rec.key.owner_uid, rec.key.name]
    values += [getattr(rec, column) for column in _RECORD_COLUMNS]
    values[_COLUMNS.index("state")] = int(rec.state)
    values[_COLUMNS.index("last_result")] = int(rec.last_result)
    values[_COLUMNS.index("source")] = int(rec.source)
    values += [getattr(job.cadence, column) for column in _CADENCE_COLUMNS]
    return (*values, job.last_end, int(job.alarm), int(job.reported), job.crontab_schedule,
            job.misses_in_a_row, job.crontab, " ".join(map(str, job.duration_sample)),
            _durations_text(rec.durations), job.durations_under)


def _durations_text(d: DurationStats) -> str:
    """A job's duration statistics as stored: their fields in order, "-" for None."""
    return " ".join("-" if value is None else str(int(value)) for value in (
        d.runs, d.minimum, d.median, d.maximum, d.low, d.low_kind, d.high, d.high_kind))


def _durations_from_text(text: str) -> DurationStats:
    if not text:
        return DurationStats()
    runs, minimum, median, maximum, low, low_kind, high, high_kind = (
        None if part == "-" else int(part) for part in text.split())
    return DurationStats(runs or 0, minimum, median, maximum,
                         low, None if low_kind is None else BoundKind(low_kind),
                         high, None if high_kind is None else BoundKind(high_kind))


def _last_result(data: dict[str, object]) -> JobState:
    """The stored last outcome; for a row stored before it was kept, derived from the row."""
    if data["last_result"] is not None:
        return JobState(data["last_result"])
    state = JobState(data["state"])
    if state in RESULTS:
        return state
    if data["last_exit_status"] is None:
        return JobState.unknown
    return JobState.ok if data["last_exit_status"] == 0 and not data["last_signal"] \
        else JobState.failed


# text columns a user's events or crontab lines filled, with their sizes: a row an older agent
# stored with anything but printable ASCII in them is escaped on load (events.safe_text)
_TEXT_COLUMNS = {
    "owner": 32, "last_log_path": MAX_PATH_CHARS, "log_problem": MAX_PROBLEM_CHARS,
    "last_message": MAX_MESSAGE_CHARS, "start_problem": MAX_PROBLEM_CHARS,
    "schedule": MAX_SCHEDULE_CHARS, "tz": MAX_SCHEDULE_CHARS,
    "crontab_schedule": MAX_SCHEDULE_CHARS, "line_gone": MAX_PROBLEM_CHARS,
    "ignored_by_cron": MAX_PROBLEM_CHARS,
    "crontab": MAX_PATH_CHARS, "command_line": IDENTITY_CHARS,
}


def _job_from_row(row: tuple[object, ...]) -> Job:
    data = dict(zip(_COLUMNS, row, strict=True))
    for column, size in _TEXT_COLUMNS.items():
        if isinstance(data[column], str):
            data[column] = safe_text(data[column], size)  # type: ignore[arg-type]
    record = JobRecord(
        key=JobKey(data["owner_uid"], data["name"]),  # type: ignore[arg-type]
        **{column: data[column] for column in _RECORD_COLUMNS
           if column not in ("state", "last_result", "source")},  # type: ignore[arg-type]
        state=JobState(data["state"]),
        last_result=_last_result(data), source=JobSource(data["source"]),
        durations=_durations_from_text(str(data["durations"])),
    )
    if data["duration_baseline"] is not None:
        data["duration_baseline"] = bool(data["duration_baseline"])
    cadence = Cadence(**{column: data[column] for column in _CADENCE_COLUMNS})  # type: ignore[arg-type]
    return Job(record, cadence, data["last_end"], bool(data["alarm"]),  # type: ignore[arg-type]
               bool(data["reported"]), data["crontab_schedule"],  # type: ignore[arg-type]
               data["misses_in_a_row"], data["crontab"],  # type: ignore[arg-type]
               duration_sample=tuple(map(int, str(data["duration_sample"]).split())),
               durations_under=str(data["durations_under"]))
