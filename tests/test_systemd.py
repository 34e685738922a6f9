"""The agent's systemd integration against real pieces: a NOTIFY_SOCKET the test binds,
systemd-socket-activate handing over a socket, and a real journald for the log handler."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cronwrap.agent.systemd_integration import (
    notify,
    notify_ready,
    notify_stopping,
    setup_logging,
    watchdog_interval,
    watchdog_loop,
)
from journald import in_private_run, running_journald

needs_activate = pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate missing"
)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def drain(sock: socket.socket) -> list[bytes]:
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096))
    except BlockingIOError:
        return messages
    finally:
        sock.settimeout(5)


def test_ready_status_and_stopping_reach_notify_socket(notify_socket: socket.socket) -> None:
    assert notify_ready() is True
    assert notify_socket.recv(4096) == b"READY=1"
    assert notify("serving 3 jobs,\n AgentX connected") is True
    assert notify_socket.recv(4096) == b"STATUS=serving 3 jobs, AgentX connected"
    assert notify_stopping() is True
    assert notify_socket.recv(4096) == b"STOPPING=1"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify_ready() is False


def test_watchdog_interval_from_environment() -> None:
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "500000"}) == 0.5
    assert watchdog_interval({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_watchdog_pings_only_while_healthy(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000")  # 20 ms: pings every 10 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    verdicts = [True, True, True, False, False]
    calls: list[bool] = []

    def is_healthy() -> bool:
        verdict = verdicts[len(calls)] if len(calls) < len(verdicts) else False
        calls.append(verdict)
        if len(calls) == 2:
            raise RuntimeError("health check bug")  # counts as unhealthy, loop survives
        return verdict

    async def scenario() -> None:
        task = asyncio.create_task(watchdog_loop(is_healthy))
        while len(calls) < 8:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert drain(notify_socket) == [b"WATCHDOG=1", b"WATCHDOG=1"]  # calls 1 and 3 were healthy


def test_watchdog_loop_returns_without_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    asyncio.run(asyncio.wait_for(watchdog_loop(lambda: True), timeout=5))


ACTIVATED_CHILD = textwrap.dedent(
    """
    import logging, sys
    from cronwrap.agent.systemd_integration import activated_unix_socket
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sock = activated_unix_socket()
    if sock is None:
        print("NONE", flush=True)
        sys.exit(3)
    conn, _ = sock.accept()
    conn.sendall(b"hello from fd %d\\n" % sock.fileno())
    conn.close()
    """
)


def start_activated(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["systemd-socket-activate", *args, sys.executable, "-c", ACTIVATED_CHILD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )


def wait_for_socket(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    while not path.is_socket():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "systemd-socket-activate did not listen"
        time.sleep(0.02)


def connect_when_listening(path: Path, proc: subprocess.Popen[str]) -> socket.socket:
    """Connect once `path` accepts: systemd-socket-activate binds it first and listens after,
    and in between a connect is refused (seen on a loaded machine)."""
    deadline = time.monotonic() + 20
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(20)
        try:
            client.connect(str(path))
            return client
        except (FileNotFoundError, ConnectionRefusedError):
            client.close()
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "systemd-socket-activate did not listen"
        time.sleep(0.02)


def greeting_and_exit(tmp_path: Path, path: Path, *args: str) -> tuple[bytes, int]:
    """Start the activated child, read what it sends on `path`, return that and its exit code."""
    proc = start_activated(tmp_path, *args)
    try:
        with connect_when_listening(path, proc) as client:
            greeting = client.makefile("rb").read()
        return greeting, proc.wait(timeout=20)
    finally:
        proc.kill()
        proc.communicate()


@needs_activate
@pytest.mark.integration
def test_activated_socket_is_served(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    assert greeting_and_exit(tmp_path, path, "-l", str(path)) == (b"hello from fd 3\n", 0)


@needs_activate
@pytest.mark.integration
def test_named_socket_is_chosen_among_several(tmp_path: Path) -> None:
    other, ours = tmp_path / "other.sock", tmp_path / "agent.sock"
    assert greeting_and_exit(
        tmp_path, ours, "-l", str(other), "-l", str(ours), "--fdname=metrics:cronwrap-agent.socket"
    ) == (b"hello from fd 4\n", 0)


@needs_activate
@pytest.mark.integration
def test_datagram_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    proc = start_activated(tmp_path, "--datagram", "-l", str(path))
    try:
        wait_for_socket(path, proc)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.sendto(b"wake up", str(path))
        out, err = proc.communicate(timeout=20)
        assert (proc.returncode, out) == (3, "NONE\n")
        assert "not a listening Unix stream socket" in err
    finally:
        proc.kill()
        proc.communicate()


LOGGING_CHILD = textwrap.dedent(
    """
    import logging, sys
    from cronwrap.agent.systemd_integration import setup_logging
    where = setup_logging("info", socket_path=sys.argv[1])
    print(where, flush=True)
    logging.getLogger("cronwrap.agent.test").info("agent started with %d jobs", 3)
    logging.getLogger("cronwrap.agent.test").debug("not shown at info")
    """
)


def run_logging_child(socket_path: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOGGING_CHILD, socket_path], capture_output=True, text=True,
        timeout=30, env=env, check=True,
    )


def test_logging_falls_back_to_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    proc = run_logging_child(str(tmp_path / "no-journal"), env)
    assert proc.stdout == "stderr\n"
    [line] = proc.stderr.splitlines()
    assert line.endswith(" INFO cronwrap.agent.test: agent started with 3 jobs")
    assert f"cronwrap-agent[{line.split('[')[1].split(']')[0]}]" in line
    assert line[:4].isdigit()  # starts with the timestamp


def test_logging_under_journal_stream_drops_timestamps(tmp_path: Path) -> None:
    proc = run_logging_child(str(tmp_path / "no-journal"), {**os.environ, "JOURNAL_STREAM": "8:9"})
    assert proc.stdout == "stderr\n"
    assert proc.stderr == "INFO cronwrap.agent.test: agent started with 3 jobs\n"


def test_setup_logging_replaces_handlers(tmp_path: Path) -> None:
    import logging

    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level
    try:
        assert setup_logging("warning", socket_path=str(tmp_path / "absent")) == "stderr"
        assert setup_logging("debug", socket_path=str(tmp_path / "absent")) == "stderr"
        assert len(root.handlers) == 1 and root.level == logging.DEBUG
    finally:
        root.handlers[:] = saved
        root.setLevel(saved_level)


@pytest.mark.integration
def test_logging_goes_to_a_real_journal(tmp_path: Path) -> None:
    with running_journald(tmp_path / "journald") as daemon:
        argv = [sys.executable, "-c", LOGGING_CHILD, "/run/systemd/journal/socket"]
        proc = subprocess.run(in_private_run(daemon.run_dir, argv), capture_output=True,
                              text=True, timeout=30, check=True)
        assert (proc.stdout, proc.stderr) == ("journal\n", "")
        [entry] = daemon.wait_for("SYSLOG_IDENTIFIER=cronwrap-agent")
    assert entry["MESSAGE"] == "agent started with 3 jobs"
    assert entry["PRIORITY"] == "6"
    assert entry["LOGGER"] == "cronwrap.agent.test"
