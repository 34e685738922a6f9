"""The real wrapper's mail (to a real aiosmtpd server) and journal records (to a real journald)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from journald import PrivateJournald, in_private_run, running_journald
from smtp_support import Collector, free_tcp_port, plain_smtp
from wrapper_helpers import CRONWRAP, Dirs, _env, dirs, run, start, wait_for

__all__ = ["dirs"]

HOST = os.uname().nodename


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, str]]:
    """A real aiosmtpd server on loopback: (its collector, "127.0.0.1:PORT")."""
    with plain_smtp() as (handler, port):
        yield handler, f"127.0.0.1:{port}"


def mail_run(dirs: Dirs, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(dirs, "--mail-to", "ops@example.org", "--mail-smtp", server, *args)


# --- mail --------------------------------------------------------------------------------

@pytest.mark.integration
def test_failing_job_sends_one_mail_with_subject_and_output_tail(
        dirs: Dirs, smtp: tuple[Collector, str]) -> None:
    collector, server = smtp
    script = "for i in $(seq 1 200); do echo line $i; done; echo 'disk full' >&2; exit 3"
    result = mail_run(dirs, server, "--mail-to", "second@example.org,third@example.org",
                      "-n", "backup", "--", "sh", "-c", script)
    assert result.returncode == 3
    assert "warning" not in result.stderr  # the usual failure report only
    assert "cronwrap: job 'backup' failed with exit status 3" in result.stderr
    [envelope] = collector.envelopes
    assert sorted(envelope.rcpt_tos) == ["ops@example.org", "second@example.org",
                                         "third@example.org"]
    [message] = collector.messages()
    assert message["Subject"] == f"[cronwrap] {HOST}: backup failed (exit 3)"
    assert message["X-Cronwrap-Job"] == "backup"
    body = message.get_content()
    [log] = dirs.job_logs("backup")
    assert f"Log:         {log}" in body
    assert "Exit status: 3" in body
    assert body.rstrip().endswith("line 199\nline 200\ndisk full")
    assert "line 1\n" in body  # the whole (small) output, not only cron's last 50 lines


@pytest.mark.integration
def test_success_is_not_mailed_on_failure(dirs: Dirs, smtp: tuple[Collector, str]) -> None:
    collector, server = smtp
    default = mail_run(dirs, server, "-n", "quiet", "--", "echo", "fine")
    explicit = mail_run(dirs, server, "--mail-on", "failure", "-n", "quiet", "--", "true")
    always = mail_run(dirs, server, "--mail-on", "always", "-n", "quiet", "--", "echo", "fine")
    assert [r.returncode for r in (default, explicit, always)] == [0, 0, 0]
    assert [r.stderr for r in (default, explicit, always)] == ["", "", ""]
    # the wrapper exits only after the server accepted the message: nothing can still arrive
    assert collector.subjects() == [f"[cronwrap] {HOST}: quiet ok"]
    assert "fine" in collector.messages()[0].get_content()


@pytest.mark.integration
def test_change_mails_the_flip_to_failure_and_the_recovery_only(
        dirs: Dirs, smtp: tuple[Collector, str]) -> None:
    collector, server = smtp
    statuses = [0, 1, 2, 0, 0, 4]
    results = [mail_run(dirs, server, "--mail-on", "change", "-n", "flappy", "--",
                        "sh", "-c", f"exit {status}") for status in statuses]
    assert [r.returncode for r in results] == statuses
    assert collector.subjects() == [
        f"[cronwrap] {HOST}: flappy failed (exit 1)",
        f"[cronwrap] {HOST}: flappy recovered",
        f"[cronwrap] {HOST}: flappy failed (exit 4)",
    ]
    assert (dirs.log / "root" / "flappy" / "last-outcome").read_text() == "failed\n"


@pytest.mark.integration
def test_smtp_server_down_is_one_warning_and_keeps_the_exit_status(dirs: Dirs) -> None:
    server = f"127.0.0.1:{free_tcp_port()}"  # nothing listens there
    failed = mail_run(dirs, server, "-n", "down", "--", "sh", "-c", "echo oops; exit 3")
    ok = mail_run(dirs, server, "--mail-on", "always", "-n", "down", "--", "true")
    assert failed.returncode == 3
    warnings = [line for line in failed.stderr.splitlines() if "warning" in line]
    assert warnings == [f"cronwrap: warning: mail not sent: SMTP server {server}: "
                        "[Errno 111] Connection refused"]
    assert ok.returncode == 0
    assert ok.stderr.splitlines() == warnings


@pytest.mark.integration
def test_overlapped_run_is_mailed_only_on_always(
        dirs: Dirs, smtp: tuple[Collector, str], tmp_path: Path) -> None:
    collector, server = smtp
    release, started = tmp_path / "release", tmp_path / "started"
    first = start(dirs, "-n", "long", "--", "sh", "-c",
                  f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done")
    try:
        wait_for(started.exists, "the first run to start")
        skipped = [mail_run(dirs, server, "--mail-on", when, "-n", "long", "--", "true")
                   for when in ("always", "failure", "change")]
    finally:
        release.touch()
        first.communicate(timeout=30)
    assert [r.returncode for r in skipped] == [75, 75, 75]
    assert collector.subjects() == [f"[cronwrap] {HOST}: long skipped, previous run still running"]
    assert not (dirs.log / "root" / "long" / "last-outcome").exists()


@pytest.mark.integration
def test_mail_from_the_config_file(dirs: Dirs, smtp: tuple[Collector, str]) -> None:
    collector, server = smtp
    dirs.config.write_text(f'mail_to = "cfg@example.org"\nmail_smtp = "{server}"\n'
                           'mail_from = "cron@web1.example.org"\n')
    result = run(dirs, "-n", "cfg", "--", "false")
    assert result.returncode == 1
    [envelope] = collector.envelopes
    assert envelope.rcpt_tos == ["cfg@example.org"]
    assert envelope.mail_from == "cron@web1.example.org"
    replaced = run(dirs, "--mail-to", "flag@example.org", "-n", "cfg", "--", "false")
    assert replaced.returncode == 1
    assert collector.envelopes[1].rcpt_tos == ["flag@example.org"]


@pytest.mark.parametrize(("args", "message"), [
    (["--mail-on", "change"], "--mail-on needs recipients: add --mail-to ADDR"),
    (["--mail-to", "nobody"], "--mail-to: invalid mail recipient 'nobody': expected user@domain"),
    (["--mail-to", "a@example.org", "--mail-on", "sometimes"],
     "--mail-on: invalid mail condition 'sometimes': expected one of failure, always, change"),
    (["--mail-to", "a@example.org", "--mail-smtp", "mx:70000"],
     "--mail-smtp: invalid SMTP port '70000' in 'mx:70000': expected 1-65535"),
    (["--mail-to", "a@example.org", "--mail-starttls"],
     "mail settings: STARTTLS and SMTP login need an SMTP server (--mail-smtp)"),
])
def test_bad_mail_options_warn_once_and_the_job_still_runs(
        dirs: Dirs, tmp_path: Path, args: list[str], message: str) -> None:
    marker = tmp_path / "ran"
    result = run(dirs, *args, "-n", "job", "--", "touch", str(marker))
    warning = f"cronwrap: warning: {message}; not mailing this run\n"
    assert (result.returncode, result.stderr, marker.exists()) == (0, warning, True)


@pytest.mark.parametrize(("args", "message"), [
    (["--mail-starttls=yes"], "cronwrap: option --mail-starttls takes no value"),
    (["--no-journal=1"], "cronwrap: option --no-journal takes no value"),
])
def test_a_command_line_that_does_not_parse_exits_64(
        dirs: Dirs, tmp_path: Path, args: list[str], message: str) -> None:
    marker = tmp_path / "ran"
    result = run(dirs, *args, "-n", "job", "--", "touch", str(marker))
    assert (result.returncode, result.stderr, marker.exists()) == (64, message + "\n", False)


@pytest.mark.parametrize(("config", "message"), [
    ('mail_to = "ops@example.org"\nmail_on = "never"\n',
     "mail_on: invalid mail condition 'never': expected one of failure, always, change"),
    ('mail_to = "ops@example.org"\nmail_smtp = "mx"\nmail_username = "u"\n'
     'mail_password = "secret-pw"\n',
     "mail settings: SMTP login needs STARTTLS (the password would cross in clear)"),
    ('mail_to = "ops@example.org"\nmail_starttls = "yes"\n',
     "mail_starttls must be true or false"),
])
def test_bad_mail_config_warns_once_and_the_job_still_runs(
        dirs: Dirs, tmp_path: Path, config: str, message: str) -> None:
    dirs.config.write_text(config)
    marker = tmp_path / "ran"
    result = run(dirs, "-n", "job", "--", "touch", str(marker))
    assert result.returncode == 0 and marker.exists()
    assert result.stderr.count("\n") == 1
    assert result.stderr.rstrip().endswith(f"{message}; not mailing this run")
    assert "secret-pw" not in result.stderr


def test_a_bad_non_mail_config_value_still_stops_the_job(dirs: Dirs, tmp_path: Path) -> None:
    dirs.config.write_text("journal = 1\n")
    marker = tmp_path / "ran"
    result = run(dirs, "-n", "job", "--", "touch", str(marker))
    assert result.returncode == 78 and not marker.exists()
    assert result.stderr.rstrip().endswith("journal must be true or false")


def imported_modules(dirs: Dirs, *args: str) -> set[str]:
    """The modules a real `cronwrap ARGS -- true` run imports, from python -X importtime."""
    result = subprocess.run(
        [CRONWRAP[0], "-X", "importtime", *CRONWRAP[1:], *dirs.options(), *args, "--", "true"],
        capture_output=True, text=True, timeout=60, env=_env(),
    )
    assert result.returncode == 0, result.stderr
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:")}


def test_mail_modules_are_imported_only_when_mail_is_configured(dirs: Dirs) -> None:
    without = imported_modules(dirs, "-n", "plain")
    with_mail = imported_modules(dirs, "-n", "plain", "--mail-to", "ops@example.org",
                                 "--mail-on", "failure")
    heavy = {"cronwrap.wrapper.mail", "smtplib", "email", "ssl", "subprocess"}
    assert "cronwrap.wrapper.journal" in without
    assert without.isdisjoint(heavy)
    assert heavy - {"ssl", "subprocess"} <= with_mail


# --- journal -----------------------------------------------------------------------------

@pytest.fixture
def journald(tmp_path: Path) -> Iterator[PrivateJournald]:
    with running_journald(tmp_path / "journald") as daemon:
        yield daemon


def run_in(run_dir: Path, dirs: Dirs, *args: str) -> subprocess.CompletedProcess[str]:
    """The real wrapper with `run_dir` mounted over /run: its journal socket is run_dir's."""
    argv = in_private_run(run_dir, [*CRONWRAP, *dirs.options(), *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_env())


@pytest.mark.integration
def test_each_run_leaves_a_journal_record(dirs: Dirs, journald: PrivateJournald) -> None:
    failed = run_in(journald.run_dir, dirs, "-n", "nightly", "--", "sh", "-c", "exit 3")
    ok = run_in(journald.run_dir, dirs, "-n", "nightly", "--", "true")
    assert (failed.returncode, ok.returncode, ok.stderr) == (3, 0, "")
    entries = journald.wait_for("JOB_NAME=nightly", count=2)
    assert [(e["JOB_STATE"], e["EXIT_STATUS"], e["PRIORITY"]) for e in entries] == [
        ("failed", "3", "3"), ("ok", "0", "6")]
    logs = dirs.job_logs("nightly")
    assert [e["LOG_PATH"] for e in entries] == [str(path) for path in logs]
    assert all(e["DURATION_MS"].isdigit() for e in entries)
    assert all(e["CPU_MS"].isdigit() and int(e["MAX_RSS_KIB"]) > 0 for e in entries)
    assert entries[0]["MESSAGE"].startswith("cronwrap: nightly failed (exit 3) in ")
    assert entries[0]["SYSLOG_IDENTIFIER"] == "cronwrap"
    assert entries[0]["_TRANSPORT"] == "journal"


@pytest.mark.integration
def test_overlapped_run_and_no_journal(
        dirs: Dirs, journald: PrivateJournald, tmp_path: Path) -> None:
    release, started = tmp_path / "release", tmp_path / "started"
    first = subprocess.Popen(
        in_private_run(journald.run_dir, [*CRONWRAP, *dirs.options(), "-n", "held", "--", "sh",
                       "-c", f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done"]),
        env=_env())
    try:
        wait_for(started.exists, "the first run to start")
        skipped = run_in(journald.run_dir, dirs, "-n", "held", "--", "true")
        quiet = run_in(journald.run_dir, dirs, "--overlap-exit", "0", "-n", "held", "--", "true")
        silent = run_in(journald.run_dir, dirs, "--no-journal", "-n", "held", "--", "true")
    finally:
        release.touch()
        first.wait(timeout=30)
    assert (skipped.returncode, quiet.returncode, silent.returncode, first.returncode) == (
        75, 0, 75, 0)
    assert quiet.stderr == ""  # --overlap-exit 0 prints nothing, the journal still has it
    entries = journald.wait_for("JOB_NAME=held", count=3)
    assert [(e["JOB_STATE"], e["EXIT_STATUS"]) for e in entries] == [
        ("overlapped", "75"), ("overlapped", "0"), ("ok", "0")]
    assert entries[0]["MESSAGE"] == skipped.stderr.strip()  # the line cron mails
    assert entries[0]["MESSAGE"].startswith(
        f"cronwrap: job 'held' is still running (pid {first.pid} ")
    assert entries[1]["MESSAGE"].endswith("not starting another run (exit 0)")
    assert "LOG_PATH" not in entries[0]
    # journald reads its socket in order: the record after --no-journal's run is there, and
    # nothing between
    assert len(journald.read("JOB_NAME=held")) == 3


@pytest.mark.integration
def test_refusing_journal_never_breaks_a_run(dirs: Dirs, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a private /run needs root")
    run_dir = tmp_path / "run"
    sock_dir = run_dir / "systemd" / "journal"
    sock_dir.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(str(sock_dir / "socket"))  # left behind, as by a crashed journald
    quiet = run_in(run_dir, dirs, "-n", "job", "--", "true")
    failing = run_in(run_dir, dirs, "-n", "job", "--", "sh", "-c", "exit 5")
    verbose = run_in(run_dir, dirs, "-v", "-n", "job", "--", "echo", "hello")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert failing.returncode == 5 and "warning" not in failing.stderr
    assert failing.stderr.startswith("cronwrap: job 'job' failed with exit status 5")
    assert verbose.returncode == 0 and verbose.stdout == "hello\n"
    assert verbose.stderr == ("cronwrap: warning: journal record not sent to "
                              "/run/systemd/journal/socket: journald is not listening "
                              "(connection refused)\n")
