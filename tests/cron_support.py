"""Debian's real cron for tests, in a private mount namespace, logging to a private journald.

`PrivateCron(base, journald, root)` runs /usr/sbin/cron -f -L 15 (util-linux `unshare -m`) where
/etc/crontab, /etc/cron.d and /var/spool/cron/crontabs are ROOT's, /run is the private
journald's run directory (so /run/crond.pid and /run/crond.reboot are private too) and /dev is
a copy holding only null, zero, full, random and urandom plus /dev/log pointing at the private
journald's syslog socket; ROOT's etc/cron.allow and etc/cron.deny, where they exist, are laid
over /etc (an overlay, so the host's /etc is never written). Nothing of the host's cron setup
or journal is touched; killing the
daemon leaves the processes watching running jobs alive, as systemd's KillMode=process does.
Needs root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from e2e_support import Rig, rig
from journald import PrivateJournald, running_journald
from netsnmp import free_port

CRON = "/usr/sbin/cron"
DEVICES = ("null", "zero", "full", "random", "urandom")
ACCESS_FILES = ("cron.allow", "cron.deny")  # read by crontab(1) only (misc.c's allowed)
NAMESPACE_SCRIPT = r"""
set -e
dev=$1 run=$2 root=$3 access=$4
shift 4
mount --bind "$run" /run
if [ -d "$access/upper" ]; then
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$access/upper,workdir=$access/work" /etc
fi
for node in null zero full random urandom; do
    : > "$dev/$node"
    mount --bind "/dev/$node" "$dev/$node"
done
ln -sfn /proc/self/fd "$dev/fd"
ln -sfn /run/systemd/journal/dev-log "$dev/log"
mount --rbind "$dev" /dev
mount --bind "$root/etc/crontab" /etc/crontab
mount --bind "$root/etc/cron.d" /etc/cron.d
mount --bind "$root/var/spool/cron/crontabs" /var/spool/cron/crontabs
exec "$@"
"""


class CronUnavailable(RuntimeError):
    """Debian's cron cannot run here; str() says why."""


def unavailable() -> str | None:
    """Why a private cron cannot run here, or None."""
    if os.geteuid() != 0:
        return "a private cron needs root (mount namespaces)"
    if not os.access(CRON, os.X_OK):
        return f"{CRON} is missing (apt-get install cron)"
    if shutil.which("unshare") is None:
        return "unshare is missing (util-linux)"
    for path in ("/etc/crontab", "/etc/cron.d", "/var/spool/cron/crontabs"):
        if not os.path.exists(path):
            return f"{path} is missing (the cron package makes it)"
    return None


def make_root(root: Path) -> None:
    """An empty crontab tree under `root`, laid out as cron and crontab discovery expect."""
    (root / "etc/cron.d").mkdir(parents=True, exist_ok=True)
    spool = root / "var/spool/cron/crontabs"
    spool.mkdir(parents=True, exist_ok=True)
    os.chmod(spool, 0o1730)
    crontab = root / "etc/crontab"
    if not crontab.exists():
        crontab.write_text("")
    os.chmod(crontab, 0o644)


def write_user_crontab(root: Path, user: str, uid: int, text: str) -> None:
    """USER's crontab as `crontab -e` leaves it: owned by the user, mode 0600."""
    path = root / "var/spool/cron/crontabs" / user
    path.write_text(text)
    os.chown(path, uid, 0)
    os.chmod(path, 0o600)


class PrivateCron:
    """/usr/sbin/cron -f -L 15 on ROOT's crontabs, logging to `journald`."""

    def __init__(self, base: Path, journald: PrivateJournald, root: Path) -> None:
        self.base = base
        self.journald = journald
        self.root = root
        self.dev = base / "dev"
        self.output = base / "cron.out"
        self.access = base / "access"  # upper/: ROOT's cron.allow and cron.deny over /etc
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateCron:
        self.dev.mkdir(parents=True, exist_ok=True)
        self._lay_access_files()
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT,
                "sh", str(self.dev), str(self.journald.run_dir), str(self.root),
                str(self.access), CRON, "-f", "-L", "15"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if "TZ" in os.environ:  # cron fires in its local time: the test's own
            env["TZ"] = os.environ["TZ"]
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        return self

    def _lay_access_files(self) -> None:
        """ROOT's cron.allow and cron.deny, copied where the namespace lays them over /etc."""
        shutil.rmtree(self.access, ignore_errors=True)
        for name in ACCESS_FILES:
            if (self.root / "etc" / name).exists():
                (self.access / "work").mkdir(parents=True, exist_ok=True)
                (self.access / "upper").mkdir(exist_ok=True)
                shutil.copy2(self.root / "etc" / name, self.access / "upper" / name)

    def in_namespace(self, argv: list[str]) -> list[str]:
        """argv run in the daemon's mount namespace (its /etc, crontabs and /dev)."""
        assert self.proc is not None, "cron is not running"
        return ["nsenter", "-t", str(self.proc.pid), "-m", *argv]

    def kill(self) -> None:
        """Stop the daemon only (SIGTERM to its pid): runs in progress go on."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> PrivateCron:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def next_minute(margin: float = 8.0) -> time.struct_time:
    """The local minute cron will fire next, at least `margin` seconds from now."""
    now = time.time()
    start = (int(now) // 60 + 1) * 60
    if start - now < margin:
        start += 60
    return time.localtime(start)


def seconds_until(minute: time.struct_time) -> float:
    return time.mktime(minute) - time.time()


@contextmanager
def cron_and_agent(base: Path, root: Path, watch_cron: bool = False
                   ) -> Iterator[tuple[Rig, PrivateJournald, PrivateCron]]:
    """A private journald, the rig's standalone agent following cron's log in it (discovery
    every second, notifications to the rig's snmptrapd) and Debian's cron on ROOT's crontabs,
    which must be `base`/agent/root (where the rig's agent discovers them).  `watch_cron`: the
    agent watches this cron daemon through its pid file (in its private /run), every second."""
    trap_port = free_port()
    with running_journald(base / "journald") as journald:
        config = cron_log_agent_config(journald.journal_dir, trap_port)
        if watch_cron:  # keys of [agent], which the config starts with
            pid_file = journald.run_dir / "crond.pid"
            config = config.replace("[agent]\n", f'[agent]\ncron_daemon = "{pid_file}"\n'
                                    "cron_daemon_interval = 1.0\n", 1)
        with rig(base, agentx=False, listen=True, trap_port=trap_port, config=config) as r, \
                PrivateCron(base / "cron", journald, root) as cron:
            assert r.agent.crontabs == root
            yield r, journald, cron


def cron_log_agent_config(journal_dir: Path, trap_port: int) -> str:
    """The agent config of these tests: cron's log in `journal_dir`, discovery every second,
    notifications as traps to 127.0.0.1:`trap_port`."""
    return (f'[agent]\ncron_log_journal = "{journal_dir}"\n'
            "discovery_interval = 1.0\n"
            f'[[snmp.target]]\naddress = "127.0.0.1:{trap_port}"\ntype = "trap"\n'
            'community = "public"\n')
