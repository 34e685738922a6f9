"""Root reading a user's run logs (`cronwrap logs JOB --user U`) reads only regular files.

The user owns the directory their logs are in, so they can put anything there under a run
log's name: a FIFO (opening it for reading blocks until a writer comes: root's command would
hang for as long as the user likes). Such an entry is refused with one line, at once.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from agent_support import Agent, cronwrap_command

from .support import User, cronwrap_as, run_as


def roots_logs(*args: str) -> subprocess.CompletedProcess[str]:
    command = cronwrap_command()
    assert command is not None
    return subprocess.run([command, "logs", *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, "HOME": "/root"}, check=False)


def test_a_fifo_planted_as_the_newest_run_log_does_not_hang_root(
        attackers: tuple[User, ...], root_agent: Agent) -> None:
    owner = attackers[0]
    job = f"job-{uuid.uuid4().hex[:8]}"
    assert cronwrap_as(owner, root_agent, "-n", job, "--", "echo", "hi").returncode == 0
    job_dir = Path(owner.home) / ".local" / "state" / "cronwrap" / owner.name / job
    planted = run_as(owner, "mkfifo", str(job_dir / "29991231T235959.999Z.log"))
    assert planted.returncode == 0, planted.stderr
    result = roots_logs(job, "--user", owner.name)  # hung (until a writer came) before
    assert result.returncode == 74 and result.stdout == "", result
    assert "not a regular file" in result.stderr, result.stderr
    older = roots_logs(job, "--user", owner.name, "--run", "2")
    assert (older.returncode, older.stdout) == (0, "hi\n"), older
