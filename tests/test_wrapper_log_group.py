"""`--log-group`: a run's logs are readable by a chosen group, and by nobody else."""

from __future__ import annotations

import grp
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from wrapper_helpers import Dirs, run

GROUP = "adm"  # exists on every Debian system; the test user `nobody` is not a member


@pytest.fixture
def dirs() -> Iterator[Dirs]:
    """Dirs under a directory other users may traverse (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="cronwrap-group-"))
    root.chmod(0o755)
    yield Dirs(root)
    shutil.rmtree(root)


def read_as(path: Path, gid: int) -> subprocess.CompletedProcess[str]:
    """Try to read `path` as user nobody with `gid` as its only group."""
    return subprocess.run(
        ["setpriv", "--reuid=nobody", f"--regid={gid}", "--clear-groups", "cat", str(path)],
        capture_output=True, text=True, timeout=30, check=False)


def test_logs_belong_to_the_group_and_only_it_may_read_them(dirs: Dirs) -> None:
    result = run(dirs, "-n", "shared", "--log-group", GROUP, "--", "echo", "for the auditors")
    assert (result.returncode, result.stderr) == (0, "")
    (log,) = dirs.job_logs("shared")
    gid = grp.getgrnam(GROUP).gr_gid
    job_dir, user_dir = log.parent.stat(), log.parent.parent.stat()
    assert (job_dir.st_gid, stat.S_IMODE(job_dir.st_mode)) == (gid, 0o2750)
    # The user level is never the group's (issue 13 item 9): others may only pass through.
    assert (user_dir.st_gid, stat.S_IMODE(user_dir.st_mode)) == (0, 0o711)
    assert (log.stat().st_gid, stat.S_IMODE(log.stat().st_mode)) == (gid, 0o640)
    member = read_as(log, gid)
    assert (member.returncode, member.stdout) == (0, "for the auditors\n")
    outsider = read_as(log, grp.getgrnam("nogroup").gr_gid)
    assert outsider.returncode != 0 and "Permission denied" in outsider.stderr


def test_an_unknown_group_costs_the_log_not_the_run(dirs: Dirs) -> None:
    result = run(dirs, "-n", "nogroup-job", "--log-group", "no-such-group", "--", "true")
    assert (result.returncode, result.stderr) == (0, "")  # nothing said on success
    assert dirs.job_logs("nogroup-job") == []
    failed = run(dirs, "-n", "nogroup-job", "--log-group", "no-such-group", "--", "false")
    assert failed.returncode == 1
    (log_line,) = [line for line in failed.stderr.splitlines() if "log:" in line]
    assert "log: (none)" in log_line and "no group named 'no-such-group'" in log_line


def test_the_group_may_come_from_the_config_file(dirs: Dirs) -> None:
    dirs.config.write_text(f'log_group = "{GROUP}"\n')
    result = run(dirs, "-n", "configured", "--config", str(dirs.config), "--", "true")
    assert (result.returncode, result.stderr) == (0, "")
    (log,) = dirs.job_logs("configured")
    assert log.stat().st_gid == grp.getgrnam(GROUP).gr_gid
