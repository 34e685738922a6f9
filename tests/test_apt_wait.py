"""scripts/apt-get-wait (what scripts/setup, and so scripts/demo on a fresh machine, install
with) waits while another apt holds its locks instead of stopping at "Could not get lock"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")
# holds apt's locks as apt does (fcntl), says so, and lets them go at a line on stdin
HOLDER = """
import fcntl, os, sys
fds = [os.open(path, os.O_RDWR | os.O_CREAT, 0o640) for path in sys.argv[1:]]
for fd in fds:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.readline()
"""
NO_SOURCES = ("-o", "Dir::Etc::sourcelist=/dev/null", "-o", "Dir::Etc::sourceparts=/nonexistent")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/apt-get"),
                       reason="apt's locks need root and apt"),
]


@pytest.mark.parametrize("args", [["update", *NO_SOURCES],
                                  ["install", "-y", "--no-install-recommends", "coreutils"]],
                         ids=["update", "install"])
def test_it_waits_for_apts_locks_and_then_runs(args: list[str]) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *LOCKS],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        waiting = subprocess.Popen([str(REPO / "scripts/apt-get-wait"), *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        with pytest.raises(subprocess.TimeoutExpired):  # plain apt-get fails at once here
            waiting.wait(timeout=3)
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.close()
        out, err = waiting.communicate(timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert waiting.returncode == 0, err  # it ran once the locks were let go
