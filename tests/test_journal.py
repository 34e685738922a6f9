"""One journald record per run over the native protocol, read back from a real systemd-journald."""

from __future__ import annotations

import os
import pwd
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cronwrap.wrapper.journal import MAX_VALUE_BYTES, encode_fields, log_run
from journald import PrivateJournald, running_journald

REAL_JOURNAL_DIR = Path("/run/systemd/journal")


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[PrivateJournald]:
    existed_before = REAL_JOURNAL_DIR.exists()
    with running_journald(tmp_path / "journald") as daemon:
        yield daemon
    assert daemon.proc is not None and daemon.proc.poll() is not None
    assert REAL_JOURNAL_DIR.exists() == existed_before


@pytest.mark.integration
def test_failed_run_fields_reach_journald(journald: PrivateJournald) -> None:
    problem = log_run(
        job="backup", state="failed", exit_status=3, duration_ms=1234,
        log_path="/var/log/cronwrap/0/backup/20261125T010000.log",
        socket_path=str(journald.socket_path),
    )
    assert problem is None
    [entry] = journald.wait_for("JOB_NAME=backup")
    assert entry["MESSAGE"] == "cronwrap: backup failed (exit 3) in 1.2s"
    assert entry["PRIORITY"] == "3"
    assert entry["SYSLOG_IDENTIFIER"] == "cronwrap"
    assert entry["JOB_STATE"] == "failed"
    assert entry["EXIT_STATUS"] == "3"
    assert entry["SIGNAL"] == "0"
    assert entry["DURATION_MS"] == "1234"
    assert entry["TIMED_OUT"] == "0"
    assert entry["LOG_PATH"] == "/var/log/cronwrap/0/backup/20261125T010000.log"
    assert entry["_TRANSPORT"] == "journal"
    assert entry["_PID"] == str(os.getpid())


@pytest.mark.integration
def test_ok_timeout_and_signal_runs(journald: PrivateJournald) -> None:
    sock = str(journald.socket_path)
    assert log_run(job="ok-job", state="ok", exit_status=0, duration_ms=50,
                   socket_path=sock) is None
    assert log_run(job="slow", state="timedOut", exit_status=124, signal=15,
                   duration_ms=60000, timed_out=True, socket_path=sock) is None
    assert log_run(job="killed", state="failed", exit_status=137, signal=9,
                   duration_ms=2500, socket_path=sock) is None
    [ok] = journald.wait_for("JOB_NAME=ok-job")
    [slow] = journald.wait_for("JOB_NAME=slow")
    [killed] = journald.wait_for("JOB_NAME=killed")
    assert (ok["MESSAGE"], ok["PRIORITY"], "LOG_PATH" in ok) == (
        "cronwrap: ok-job ok in 0.1s", "6", False)
    assert slow["MESSAGE"] == "cronwrap: slow timed out after 60.0s (exit 124)"
    assert (slow["TIMED_OUT"], slow["SIGNAL"], slow["PRIORITY"]) == ("1", "15", "3")
    assert killed["MESSAGE"] == "cronwrap: killed killed by signal 9 (exit 137) after 2.5s"
    assert len(journald.read("SYSLOG_IDENTIFIER=cronwrap")) == 3


@pytest.mark.integration
def test_multiline_and_oversized_values(journald: PrivateJournald) -> None:
    note = "first line\nsecond line\n\nfourth=line"
    big = "x" * (MAX_VALUE_BYTES * 3)
    assert log_run(job="multi", state="failed", exit_status=1, extra={"NOTE": note, "BIG": big},
                   socket_path=str(journald.socket_path)) is None
    [entry] = journald.wait_for("JOB_NAME=multi")
    assert entry["NOTE"] == note
    assert entry["BIG"] == "x" * MAX_VALUE_BYTES


def test_no_journal_socket_is_silent(tmp_path: Path) -> None:
    assert log_run(job="backup", state="ok", exit_status=0,
                   socket_path=str(tmp_path / "absent" / "socket")) is None


def test_socket_file_with_nobody_listening_is_a_reason(tmp_path: Path) -> None:
    path = str(tmp_path / "socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(path)  # the file stays behind after close, like a crashed journald's
    problem = log_run(job="backup", state="failed", exit_status=1, socket_path=path)
    assert problem == f"journal record not sent to {path}: journald is not listening " \
                      "(connection refused)"


def test_full_queue_does_not_block(tmp_path: Path) -> None:
    path = str(tmp_path / "socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stuck:  # bound, never read
        stuck.bind(path)
        results = [log_run(job="backup", state="ok", exit_status=0, socket_path=path)
                   for _ in range(2000)]
        queued = 0
        stuck.setblocking(False)
        while True:
            try:
                stuck.recv(65536)
            except BlockingIOError:
                break
            queued += 1
    dropped = [r for r in results if r is not None]
    assert dropped and set(dropped) == {
        f"journal record not sent to {path}: journald is busy (its queue is full); record dropped"
    }
    assert queued == results.count(None)


def test_bad_field_name_is_a_reason(tmp_path: Path) -> None:
    problem = log_run(job="backup", state="ok", exit_status=0, extra={"lower": "x"},
                      socket_path=str(tmp_path / "socket"))
    assert problem == "journal record not sent: invalid journal field name 'lower'"


def test_encoding_uses_the_length_form_only_for_newlines() -> None:
    data = encode_fields([("MESSAGE", "hi"), ("NOTE", "a\nb"), ("RAW", b"\x00=")])
    assert data == b"MESSAGE=hi\nNOTE\n" + struct.pack("<Q", 3) + b"a\nb\nRAW=\x00=\n"


FORGE = """
import socket, sys
from cronwrap.wrapper.journal import encode_fields
sock = socket.socket(fileno=int(sys.argv[1]))
sock.send(encode_fields([("MESSAGE", "cronwrap: backup ok in 1.0s"), ("PRIORITY", "6"),
                         ("SYSLOG_IDENTIFIER", "cronwrap"), ("JOB_NAME", "backup"),
                         ("JOB_STATE", "ok")]))
"""


@pytest.mark.integration
def test_the_documented_query_names_the_owner_so_a_forged_record_is_left_out(
        journald: PrivateJournald) -> None:
    """docs/operations.md's `journalctl _UID=0 JOB_NAME=backup`: any user can log a record
    that looks like root's backup run; only `_UID`, which journald sets, tells them apart."""
    assert log_run(job="backup", state="failed", exit_status=3, duration_ms=1,
                   socket_path=str(journald.socket_path)) is None
    nobody = pwd.getpwnam("nobody")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(str(journald.socket_path))  # root opens (the test dir is 0700); nobody sends
        subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                        "--clear-groups", sys.executable, "-c", FORGE, str(sock.fileno())],
                       pass_fds=[sock.fileno()], check=True, timeout=60)
    assert len(journald.wait_for("JOB_NAME=backup", count=2)) == 2  # the forgery is there
    [root_run] = journald.read("_UID=0", "JOB_NAME=backup")
    assert root_run["JOB_STATE"] == "failed"
