"""After a run: its journal record and its mail, neither of which may change the run's outcome.

journal.py is imported on every run (it is cheap); mail.py (smtplib, email) only when
settings.mail is set.  Trouble costs one warning line on stderr: always for mail, which the
user asked for; for the journal only with --verbose, since cron would mail that line on
every run of every job on a host whose journald is unwell.
"""

from __future__ import annotations

import os
import sys

from cronwrap.wrapper.config import Settings, user_name
from cronwrap.wrapper.errors import WrapperError
from cronwrap.wrapper.runner import Outcome

LAST_OUTCOME = "last-outcome"  # kept next to the job's run logs, for --mail-on change


def run_state(outcome: Outcome) -> str:
    """The run's JOB_STATE: ok, failed or timedOut."""
    if outcome.timed_out:
        return "timedOut"
    return "ok" if outcome.exit_status == 0 else "failed"


def after_run(settings: Settings, uid: int, outcome: Outcome, log_path: str | None,
              output_tail: bytes) -> None:
    """Write the journal record and send the mail a finished run calls for."""
    job = settings.name or ""
    state = run_state(outcome)
    duration_ms = outcome.duration_ms
    if settings.journal:
        _journal(settings, job=job, state=state, exit_status=outcome.exit_status,
                 signal=outcome.signal, duration_ms=duration_ms, timed_out=outcome.timed_out,
                 log_path=log_path, extra=usage_fields(outcome))
    if settings.mail is not None:
        _mail_run(settings, uid, state, outcome.exit_status, duration_ms, log_path,
                  output_tail.decode("utf-8", "replace"))


def usage_fields(outcome: Outcome) -> dict[str, str]:
    """The run's resource use as journal fields: CPU_MS (user + system, milliseconds) and
    MAX_RSS_KIB (the largest single process's peak); none for a job that did not start."""
    if outcome.cpu_ms is None or outcome.max_rss_kib is None:
        return {}
    return {"CPU_MS": str(outcome.cpu_ms), "MAX_RSS_KIB": str(outcome.max_rss_kib)}


def after_overlap(settings: Settings, message: str) -> None:
    """A run skipped because the previous one holds the lock: journal it with `message` (the
    line naming the holder); mail it on `always`.

    The last-outcome file is left alone: the run still going will record its own outcome.
    """
    job = settings.name or ""
    if settings.journal:
        _journal(settings, job=job, state="overlapped", exit_status=settings.overlap_exit,
                 signal=0, duration_ms=0, timed_out=False, log_path=None, message=message)
    if settings.mail is not None and settings.mail.on == "always":
        from cronwrap.wrapper.mail import send_run_mail

        _warn(send_run_mail(settings.mail, host=os.uname().nodename, job=job,
                            state="overlapped", exit_status=settings.overlap_exit,
                            duration_ms=0, log_path=None, output_tail=""))


def _journal(settings: Settings, **fields: object) -> None:
    from cronwrap.wrapper.journal import log_run

    problem = log_run(**fields)  # type: ignore[arg-type]
    if settings.verbose:
        _warn(problem)


def _mail_run(settings: Settings, uid: int, state: str, exit_status: int, duration_ms: int,
              log_path: str | None, output_tail: str) -> None:
    from cronwrap.wrapper import mail

    assert settings.mail is not None
    failed = exit_status != 0
    dir_fd = _job_dir(settings, uid)
    try:
        previous = (mail.read_last_outcome(LAST_OUTCOME, dir_fd=dir_fd)
                    if dir_fd is not None else None)
        if mail.should_mail(settings.mail, failed, previous):
            _warn(mail.send_run_mail(
                settings.mail, host=os.uname().nodename, job=settings.name or "", state=state,
                exit_status=exit_status, duration_ms=duration_ms, log_path=log_path,
                output_tail=output_tail, previous_failed=previous,
            ))
        if dir_fd is not None:
            _warn(mail.write_last_outcome(LAST_OUTCOME, failed, dir_fd=dir_fd))
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _job_dir(settings: Settings, uid: int) -> int | None:
    """An fd on the job's log directory, or None if it is unusable (already warned about)."""
    from cronwrap.wrapper.logs import default_log_dir, open_job_dir

    log_dir = settings.log_dir or default_log_dir(uid, os.environ)
    try:
        return open_job_dir(log_dir, user_name(uid), settings.name or "", uid, set_modes=False)
    except (OSError, WrapperError):
        return None


def _warn(problem: str | None) -> None:
    if problem:
        sys.stderr.write(f"cronwrap: warning: {problem}\n")
        sys.stderr.flush()
