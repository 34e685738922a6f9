"""One wrapped run of a job: lock, log, events, supervision, retention and the failure report."""

from __future__ import annotations

import os
import sys
import time

from cronwrap.wrapper.client import Reporter
from cronwrap.wrapper.config import Settings, read_env_file, user_name
from cronwrap.wrapper.errors import EX_CANTCREAT, WrapperError
from cronwrap.wrapper.events import (
    MAX_MESSAGE_CHARS,
    MAX_PROBLEM_CHARS,
    Cadence,
    Finished,
    Overlapped,
    Started,
    new_event_id,
)
from cronwrap.wrapper.locks import JobLock, default_lock_dir
from cronwrap.wrapper.logs import (
    LOCKS_SUBDIR,
    RunLog,
    TailRing,
    create_run_log,
    default_log_dir,
    group_id,
    open_job_dir,
    open_locks_dir,
)
from cronwrap.wrapper.notify import after_overlap, after_run
from cronwrap.wrapper.runner import Outcome, Supervisor

FAILURE_TAIL_BYTES = 8192


def last_line(output: bytes) -> str | None:
    """The last line of output with printable text, control characters dropped, cut to
    MAX_MESSAGE_CHARS; None when there is none."""
    for raw in reversed(output.splitlines()):
        text = "".join(c for c in raw.decode(errors="replace") if c.isprintable()).strip()
        if text:
            return text[:MAX_MESSAGE_CHARS]
    return None
FAILURE_TAIL_LINES = 50
MAIL_TAIL_BYTES = 64 * 1024  # mail.MAX_TAIL_BYTES: what a mail shows of the output


def run_job(settings: Settings) -> int:
    """Run settings.command under cronwrap's guard and return the wrapper's exit status.

    The run's one start time is taken once the lock is held (after any --lock-wait): the lock
    record, the log's name, the started event and the finished event's start_time all carry it.
    """
    uid = os.getuid()
    job = settings.name or ""
    cadence = Cadence(settings.schedule, settings.every, settings.grace, settings.timeout,
                      settings.max_runtime, settings.tz, settings.min_duration,
                      settings.max_duration, settings.duration_baseline)
    reporter = Reporter(settings.socket, settings.spool_dir, uid)
    log_dir = settings.log_dir or default_log_dir(uid, os.environ)
    user = user_name(uid)
    lock_notes: list[str] = []  # a lock taken in the fallback directory: said like log problems
    try:
        locks = _open_locks(settings, uid, job, log_dir, user, lock_notes)
    except WrapperError as exc:
        return _refused(settings, reporter, cadence, str(exc))
    try:
        try:
            busy = _acquire(locks, settings.lock_wait)
        except WrapperError as exc:
            return _refused(settings, reporter, cadence, str(exc))
        if busy is not None:
            return _overlapped(settings, busy, reporter, cadence)
        start = time.time()
        for lock in locks:
            lock.record_holder(start)
        log_problems: list[str] = []  # the agent hears of them; stderr only on a failure
        log = _open_log(settings, uid, log_dir, user, start, log_problems)
        reporter.report(Started(new_event_id(), job, start, os.getpid(), cadence))
        tail = TailRing(MAIL_TAIL_BYTES if settings.mail else FAILURE_TAIL_BYTES)
        lock_fds = tuple(lock.fileno() for lock in locks)
        outcome = _supervise(settings, uid, log, tail, log_problems, lock_fds)
    finally:
        for lock in locks:
            lock.close()
    log_path = _close_log(settings, log, log_problems)
    log_problem = log_problems[0][:MAX_PROBLEM_CHARS] if log_problems else None
    output = tail.value()
    reporter.report(Finished(
        new_event_id(), job, time.time(), os.getpid(), start_time=start,
        exit_status=outcome.exit_status, signal=outcome.signal,
        duration_ms=outcome.duration_ms, timed_out=outcome.timed_out,
        log_path=log_path, cadence=cadence, log_problem=log_problem,
        last_message=last_line(output) if settings.last_message else None,
        cpu_ms=outcome.cpu_ms, max_rss_kib=outcome.max_rss_kib,
    ))
    if outcome.exit_status != 0:
        _report_failure(job, outcome, log_path, log_problem, output[-FAILURE_TAIL_BYTES:],
                        settings.verbose, lock_notes)
    elif settings.verbose:
        for problem in ([log_problem] if log_problem else []) + lock_notes:
            _say(f"warning: {problem}")
    after_run(settings, uid, outcome, log_path, output)
    return outcome.exit_status


def job_environment(settings: Settings, uid: int) -> dict[str, str]:
    """The job's environment; ConfigError (exit 78) for an env file that is bad or untrusted."""
    env = dict(os.environ)
    for path in settings.env_files:
        env.update(read_env_file(path))
    return env


def _open_locks(settings: Settings, uid: int, job: str, log_dir: str, user: str,
                notes: list[str]) -> list[JobLock]:
    """The run's locks, in the order they are taken: see _open_lock and _fallback_in_use.

    A lock in the usual directory comes with the fallback lock whenever a fallback lock file
    exists: a run may hold that one (its lock directory was squatted), and the squatter may
    remove the squat meanwhile. Both are taken, usual first, so the two places exclude each
    other and no two runs wait on each other in opposite orders.
    """
    lock, in_fallback = _open_lock(settings, uid, job, log_dir, user, notes)
    if in_fallback:
        return [lock]
    try:
        fallback = _fallback_in_use(lock, uid, job, log_dir, user)
    except BaseException:
        lock.close()
        raise
    return [lock] if fallback is None else [lock, fallback]


def _open_lock(settings: Settings, uid: int, job: str, log_dir: str, user: str,
               notes: list[str]) -> tuple[JobLock, bool]:
    """The job's lock in its lock directory, else in LOGDIR/<user>/.locks (docs/wrapper.md),
    and whether it is the fallback.

    The fallback is the caller's own directory, which no other user can create or swap, so a
    lock directory another user planted or squatted (say /tmp/cronwrap-UID) cannot stop the
    job. WrapperError only when neither place is safe.
    """
    lock_dir = settings.lock_dir or default_lock_dir(uid, os.environ)
    try:
        return JobLock.in_dir(lock_dir, job, uid), False
    except (OSError, WrapperError) as exc:
        problem = _reason(exc)
    try:
        dir_fd, fallback = open_locks_dir(log_dir, user, uid)
    except (OSError, WrapperError) as exc:
        raise WrapperError(f"{problem}; the fallback under {log_dir}: {_reason(exc)}") from None
    try:
        lock = JobLock(dir_fd, fallback, job, uid)
    except WrapperError as exc:
        raise WrapperError(f"{problem}; the fallback {fallback}: {exc}") from None
    finally:
        os.close(dir_fd)
    notes.append(f"locked in {fallback}: the lock directory was refused: {problem}")
    return lock, True


def _fallback_in_use(lock: JobLock, uid: int, job: str, log_dir: str, user: str
                     ) -> JobLock | None:
    """The job's fallback lock if its file exists (a run may hold it), else None.

    Without one this costs a single failed lstat. A fallback that cannot be opened safely
    (or is the usual lock itself, with --lock-dir LOGDIR/<user>/.locks) is one no run can
    hold apart from `lock`, so it is left out.
    """
    name = f"{job}.{uid}.lock"
    try:
        os.lstat(os.path.join(log_dir, user, LOCKS_SUBDIR, name))
    except OSError:
        return None
    try:
        dir_fd, fallback_dir = open_locks_dir(log_dir, user, uid)
    except (OSError, WrapperError):
        return None
    try:
        fallback = JobLock(dir_fd, fallback_dir, job, uid)
    except WrapperError:
        return None
    finally:
        os.close(dir_fd)
    if os.path.samestat(os.fstat(fallback.fileno()), os.fstat(lock.fileno())):
        fallback.close()
        return None
    return fallback


def _acquire(locks: list[JobLock], wait: float) -> JobLock | None:
    """Take `locks` in order within `wait` seconds in all: None once all are held, else the
    one that stayed busy, with every lock released, so that an overlapping start is never seen
    as a holder while it reports."""
    deadline = time.monotonic() + wait
    for index, lock in enumerate(locks):
        try:
            held = lock.acquire(max(0.0, deadline - time.monotonic()))
        except BaseException:
            _release(locks[:index])
            raise
        if not held:
            _release(locks[:index])
            return lock
    return None


def _release(locks: list[JobLock]) -> None:
    for lock in locks:
        lock.release()


def _refused(settings: Settings, reporter: Reporter, cadence: Cadence, problem: str) -> int:
    """No safe place for the lock: the job does not run; the agent counts a failed run (73)."""
    job = settings.name or ""
    _say(f"job {job!r} not run: no safe place for its lock: {problem} "
         f"(exit {EX_CANTCREAT}, reported to the agent as a failed run)")
    now = time.time()
    reporter.report(Finished(new_event_id(), job, now, os.getpid(), start_time=now,
                             exit_status=EX_CANTCREAT, cadence=cadence))
    after_run(settings, os.getuid(), Outcome(EX_CANTCREAT), None, problem.encode())
    return EX_CANTCREAT


def _overlapped(settings: Settings, lock: JobLock, reporter: Reporter, cadence: Cadence) -> int:
    """The previous run holds the lock: report and journal the overlap; say it on stderr only
    when the overlap exit status is not 0 (or with -v), so `--overlap-exit 0` keeps cron quiet."""
    holder = lock.holder()
    job = settings.name or ""
    since = (time.strftime(" since %Y-%m-%dT%H:%M:%SZ", time.gmtime(holder.start))
             if holder.start else "")
    who = f"pid {holder.pid}" if holder.pid else "an unknown process"
    orphan = (f", left running by cronwrap pid {holder.lost_wrapper}, which is gone"
              if holder.lost_wrapper else "")
    line = (f"job {job!r} is still running ({who}{since}{orphan}); not starting another run "
            f"(exit {settings.overlap_exit})")
    if settings.overlap_exit != 0 or settings.verbose:  # exit 0: quiet, cron mails nothing
        _say(line)
    reporter.report(Overlapped(new_event_id(), job, time.time(), os.getpid(), holder.pid, cadence,
                               lost_wrapper_pid=holder.lost_wrapper))
    after_overlap(settings, f"cronwrap: {line}")
    return settings.overlap_exit


def _open_log(settings: Settings, uid: int, log_dir: str, user: str, start: float,
              problems: list[str]) -> RunLog | None:
    """The run's log, or None (running without one) with the reason added to `problems`."""
    dir_path = os.path.join(log_dir, user, settings.name or "")
    try:
        gid = group_id(settings.log_group) if settings.log_group else None
        dir_fd = open_job_dir(log_dir, user, settings.name or "", uid, gid)
    except (OSError, WrapperError) as exc:
        problems.append(f"cannot write a log under {log_dir}: {_reason(exc)}")
        return None
    try:
        return create_run_log(dir_fd, dir_path, start, settings.max_log_size)  # owns dir_fd
    except OSError as exc:
        os.close(dir_fd)
        problems.append(f"cannot create a log in {dir_path}: {_reason(exc)}")
        return None


def _supervise(settings: Settings, uid: int, log: RunLog | None, tail: TailRing,
               log_problems: list[str], lock_fds: tuple[int, ...]) -> Outcome:
    """Run the job; it inherits the locked `lock_fds`, as under flock(1), so the lock stays held
    while any process of the run that kept the descriptors lives, even if cronwrap is killed."""
    sinks = [tail.add]
    if log is not None:
        sinks.append(_guarded(log, log_problems))
    if settings.verbose:
        sinks.append(_tee)

    def on_output(data: bytes) -> None:
        for sink in sinks:
            sink(data)

    supervisor = Supervisor(on_output, settings.timeout, settings.kill_after)
    try:
        outcome = supervisor.run(settings.command, job_environment(settings, uid), lock_fds)
    except WrapperError as exc:  # not started: env file refused (78), not executable (126/127)
        _say(str(exc))
        return Outcome(exc.exit_code)
    if outcome.killed:  # in the log (and a failure's report), not on a success's stderr
        on_output(f"cronwrap: killed {len(outcome.killed)} process(es) the job left running: "
                  f"{', '.join(outcome.killed)}\n".encode())
    if outcome.survivors:
        _say(f"warning: {len(outcome.survivors)} process(es) the job started could not be "
             f"killed and are still running: {', '.join(outcome.survivors)}")
    return outcome


def _guarded(log: RunLog, problems: list[str]):  # noqa: ANN202 - a small closure
    failed = []

    def write(data: bytes) -> None:
        if failed:
            return
        try:
            log.write(data)
        except OSError as exc:
            failed.append(exc)
            problems.append(f"writing {log.path} failed: {_reason(exc)}; "
                            "output no longer logged")

    return write


def _tee(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except (OSError, ValueError):  # stdout closed or gone: the log still has everything
        pass


def _close_log(settings: Settings, log: RunLog | None, problems: list[str]) -> str | None:
    if log is None:
        return None
    try:
        log.finish(settings.keep, settings.keep_days)  # prunes through the run's own dir fd
    except OSError as exc:
        problems.append(f"finishing {log.path} failed: {_reason(exc)}")
    return log.path


def _report_failure(job: str, outcome: Outcome, log_path: str | None, log_problem: str | None,
                    output: bytes, verbose: bool, lock_notes: list[str]) -> None:
    if outcome.timed_out:
        what = f"timed out (exit {outcome.exit_status})"
    elif outcome.forwarded:
        what = (f"was stopped by signal {outcome.forwarded} sent to cronwrap"
                f" (exit {outcome.exit_status})")
    elif outcome.signal:
        what = f"was killed by signal {outcome.signal} (exit {outcome.exit_status})"
    else:
        what = f"failed with exit status {outcome.exit_status}"
    log_line = log_path or "(none)"
    if log_problem:
        log_line += f" ({log_problem})" if log_path is None else f" (incomplete: {log_problem})"
    lines = [f"cronwrap: job {job!r} {what} after {outcome.duration:.1f}s",
             f"cronwrap: log: {log_line}"]
    lines.extend(f"cronwrap: lock: {note}" for note in lock_notes)
    if output and not verbose:
        last = output.splitlines()[-FAILURE_TAIL_LINES:]
        lines.append(f"--- last {len(last)} lines of output ---")
        lines.extend(line.decode("utf-8", "replace") for line in last)
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or str(exc)


def _say(message: str) -> None:
    sys.stderr.write(f"cronwrap: {message}\n")
    sys.stderr.flush()
