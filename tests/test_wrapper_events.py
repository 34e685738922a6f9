"""Event delivery from the real wrapper: to a live Unix-socket agent, or durably to the spool."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cronwrap.wrapper.events import Finished, Started, decode_message, error_reply, ok_reply
from wrapper_helpers import Dirs, dirs, run

__all__ = ["dirs"]


class StubAgent:
    """A tiny real agent: accepts connections on a Unix socket, reads one line, sends `reply`."""

    def __init__(self, path: Path, reply: bytes | None) -> None:
        self.reply = reply
        self.received: list[bytes] = []
        self.peers: list[int] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                self.peers.append(int.from_bytes(creds[4:8], "little"))
                line = b""
                while not line.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    line += chunk
                self.received.append(line)
                if self.reply is None:
                    conn.recv(1)  # never answer: wait until the wrapper gives up and hangs up
                else:
                    conn.sendall(self.reply)

    def close(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()


@pytest.fixture
def agent_factory(dirs: Dirs) -> Iterator:
    agents: list[StubAgent] = []

    def make(reply: bytes | None) -> StubAgent:
        agents.append(StubAgent(dirs.socket, reply))
        return agents[-1]

    yield make
    for agent in agents:
        agent.close()


def test_no_agent_spools_each_event_durably(dirs: Dirs) -> None:
    result = run(dirs, "-n", "offline", "--", "sh", "-c", "exit 5")
    assert result.returncode == 5
    assert "cannot spool" not in result.stderr
    user_dir = dirs.spool / str(os.getuid())
    files = sorted(user_dir.iterdir())
    assert all(f.suffix == ".json" and not f.name.startswith(".") for f in files)
    assert len(files) == 2
    events = [decode_message(f.read_bytes()) for f in files]
    for path, event in zip(files, events, strict=True):
        assert path.name == f"{event.id}.json"
        assert path.read_bytes() == event.to_wire()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {type(e) for e in events} == {Started, Finished}
    assert stat.S_IMODE(user_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(dirs.spool.stat().st_mode) == 0o1733


def test_env_variables_choose_socket_and_spool(dirs: Dirs, tmp_path: Path) -> None:
    import subprocess
    import sys

    spool = tmp_path / "env-spool"
    env = dict(
        os.environ, CRONWRAP_SOCKET=str(tmp_path / "none.sock"), CRONWRAP_SPOOL_DIR=str(spool)
    )
    result = subprocess.run(
        [sys.executable, "-m", "cronwrap.wrapper.cli", "--log-dir", str(dirs.log), "--lock-dir",
         str(dirs.lock), "--config", str(dirs.config), "-n", "envy", "--", "true"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0 and result.stderr == ""
    assert len(list((spool / str(os.getuid())).glob("*.json"))) == 2


def test_acking_agent_gets_every_event_and_nothing_is_spooled(dirs: Dirs, agent_factory) -> None:
    agent = agent_factory(ok_reply())
    result = run(dirs, "-n", "online", "--schedule", "*/5 * * * *", "--", "true")
    assert (result.returncode, result.stderr) == (0, "")
    events = [decode_message(line) for line in agent.received]
    assert [type(e) for e in events] == [Started, Finished]
    assert events[0].cadence.schedule == "*/5 * * * *"
    assert agent.peers == [os.getuid(), os.getuid()]
    assert dirs.spooled() == []


def test_a_long_job_still_delivers_its_finish_event(dirs: Dirs, agent_factory) -> None:
    """The delivery budget counts time spent talking to the agent, not the job's run time."""
    agent = agent_factory(ok_reply())
    result = run(dirs, "-n", "slow", "--", "sleep", "1.5")
    assert (result.returncode, result.stderr) == (0, "")
    assert [type(decode_message(line)) for line in agent.received] == [Started, Finished]
    assert dirs.spooled() == []


def test_rejected_event_is_reported_and_not_spooled(dirs: Dirs, agent_factory) -> None:
    agent_factory(error_reply("job quota exceeded"))
    result = run(dirs, "-n", "refused", "--", "true")
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all("rejected" in line and "job quota exceeded" in line for line in lines)
    assert dirs.spooled() == []


def test_a_busy_agent_gets_its_events_spooled_silently(dirs: Dirs, agent_factory) -> None:
    """Over a per-user limit the agent answers "busy": not a rejection, the events are spooled
    and the agent applies them from the spool later."""
    agent_factory(error_reply("agent busy: uid 1000 sent more than 50 events a second", "busy"))
    result = run(dirs, "-n", "eager", "--", "true")
    assert (result.returncode, result.stderr) == (0, "")
    assert [type(e) for e in dirs.spooled()] == [Started, Finished]


def test_silent_agent_costs_a_bounded_wait_then_events_are_spooled(
    dirs: Dirs, agent_factory
) -> None:
    agent = agent_factory(None)
    result = run(dirs, "-n", "hung", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    assert len(agent.received) == 1  # the budget went on the first event; the second was spooled
    spooled = dirs.spooled()
    assert [type(e) for e in spooled] == [Started, Finished]
    assert spooled[0].to_wire() == agent.received[0]
    # the agent may have applied the event it was sent: spooled as a retry, drained first
    names = {path.name for path in (dirs.spool / str(os.getuid())).glob("*.json")}
    assert names == {f"r-{spooled[0].id}.json", f"{spooled[1].id}.json"}


def test_garbled_reply_counts_as_a_transport_failure(dirs: Dirs, agent_factory) -> None:
    agent_factory(b"hello\n")
    result = run(dirs, "-n", "garbled", "--", "true")
    assert result.returncode == 0 and result.stderr == ""
    assert [type(e) for e in dirs.spooled()] == [Started, Finished]


def test_unusable_spool_warns_once_and_keeps_the_job_result(dirs: Dirs, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "cronwrap.wrapper.cli", "--log-dir", str(dirs.log), "--lock-dir",
         str(dirs.lock), "--config", str(dirs.config), "--socket", str(dirs.socket),
         "--spool-dir", str(blocker / "spool"), "-n", "nospool", "--", "sh", "-c", "exit 4"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 4
    warnings = [line for line in result.stderr.splitlines() if "cannot spool" in line]
    assert len(warnings) == 1


def test_symlink_planted_as_the_user_spool_dir_is_refused(dirs: Dirs, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    dirs.spool.mkdir()
    (dirs.spool / str(os.getuid())).symlink_to(target)
    result = run(dirs, "-n", "sneaky", "--", "true")
    assert (result.returncode, result.stderr) == (0, "")
    assert list(target.iterdir()) == []
    # Both events went to one fallback directory of the run's own, named <uid>.<16 hex>.
    (fallback,) = [p for p in dirs.spool.iterdir() if p.name != str(os.getuid())]
    uid, dot, suffix = fallback.name.partition(".")
    assert (uid, dot, len(suffix), set(suffix) <= set("0123456789abcdef")) == (
        str(os.getuid()), ".", 16, True)
    assert not fallback.is_symlink() and stat.S_IMODE(fallback.stat().st_mode) == 0o700
    assert len(list(fallback.glob("*.json"))) == 2


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A world-traversable temp dir (pytest's own tmp dirs are 0700 root)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="cronwrap-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_non_root_user_spools_into_its_own_dir(shared_tmp: Path) -> None:
    """As `nobody`, under a root-created sticky spool root: ROOT/<uid> is made 0700 by nobody."""
    import pwd
    import shutil
    import subprocess
    import sys

    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    nobody = pwd.getpwnam("nobody").pw_uid
    tmp_path = shared_tmp
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(0o1733)
    work = tmp_path / "work"
    work.mkdir()
    os.chown(work, nobody, -1)
    config = tmp_path / "empty.toml"
    config.write_text("")
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m",
         "cronwrap.wrapper.cli", "--log-dir", str(work / "log"), "--lock-dir", str(work / "lock"),
         "--spool-dir", str(spool), "--socket", str(work / "none.sock"), "--config", str(config),
         "-n", "asnobody", "--", "true"],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"], "HOME": "/"},
    )
    assert (result.returncode, result.stderr) == (0, "")
    user_dir = spool / str(nobody)
    assert user_dir.stat().st_uid == nobody and stat.S_IMODE(user_dir.stat().st_mode) == 0o700
    assert len(list(user_dir.glob("*.json"))) == 2
    (log,) = (work / "log" / "nobody" / "asnobody").glob("*.log")
    assert log.stat().st_uid == nobody


def test_a_fallback_spool_dir_the_agent_removed_is_replaced(tmp_path: Path) -> None:
    """The agent rmdirs a drained fallback directory; the run's next event makes a new one."""
    from cronwrap.wrapper.spool import Spool

    root = tmp_path / "spool"
    root.mkdir()
    (root / str(os.getuid())).symlink_to(tmp_path)  # squatted
    spool = Spool(str(root), os.getuid())
    first = Path(spool.write("a" * 32, b"{}\n"))
    assert first.parent.name.startswith(f"{os.getuid()}.") and first.exists()
    first.unlink()
    first.parent.rmdir()  # what the agent does once it has applied everything in it
    second = Path(spool.write("b" * 32, b"{}\n"))
    assert second.exists() and second.parent != first.parent
    assert second.parent.name.startswith(f"{os.getuid()}.")


def test_a_reply_queued_as_the_wrapper_gives_up_is_still_read() -> None:
    """Giving up, the wrapper stops reading first (SHUT_RD), then reads what is queued: a reply
    queued before is read (no retry is spooled), one written after fails on the agent's side,
    so the agent knows which events may come again (docs/protocol.md, Exactly once)."""
    from cronwrap.wrapper.client import _last_reply

    wrapper, agent = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with wrapper, agent:
        agent.sendall(ok_reply())
        assert _last_reply(wrapper) == ok_reply()
        with pytest.raises(BrokenPipeError):
            agent.sendall(ok_reply())


def test_an_agent_that_answers_too_late_cannot_give_its_reply(tmp_path: Path) -> None:
    from cronwrap.wrapper.client import TransportError, deliver

    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    given_up = threading.Event()
    outcome: list[BaseException | None] = []

    def slow_agent() -> None:
        conn, _ = server.accept()
        with conn:
            conn.makefile("rb").readline()
            given_up.wait(30)
            try:
                conn.sendall(ok_reply())
                outcome.append(None)
            except OSError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=slow_agent)
    thread.start()
    with pytest.raises(TransportError) as raised:
        deliver(path, b'{"v":1}\n', 0.2)
    given_up.set()
    thread.join(30)
    server.close()
    assert raised.value.sent  # spooled as a retry...
    assert len(outcome) == 1 and isinstance(outcome[0], BrokenPipeError)  # ...and the agent knows
