"""The attack toolbox itself: setpriv really drops to the test user; root's files stay closed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from agent_support import Agent

from .support import User, cronwrap_as, owned_dir, run_as


def test_run_as_drops_to_the_user_and_its_own_groups(attackers: tuple[User, ...]) -> None:
    user = attackers[0]
    script = "import json, os; print(json.dumps([os.getuid(), os.geteuid(), os.getgid(), " \
             "os.getgroups(), os.environ['HOME']]))"
    result = run_as(user, sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [user.uid, user.uid, user.gid, [user.gid], user.home]


def test_the_user_cannot_read_what_root_keeps_private(attackers: tuple[User, ...],
                                                      shared_base: Path) -> None:
    secret = shared_base / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    result = run_as(attackers[0], "cat", str(secret))
    assert result.returncode != 0 and "Permission denied" in result.stderr


def test_each_user_reports_its_own_runs_to_the_root_agent(attackers: tuple[User, ...],
                                                          root_agent: Agent,
                                                          shared_base: Path) -> None:
    for user in attackers:
        work = owned_dir(shared_base / user.name, user)
        result = cronwrap_as(user, root_agent, "--log-dir", str(work / "log"), "--lock-dir",
                             str(work / "lock"), "-n", "hello", "--", "true")
        assert (result.returncode, result.stderr) == (0, "")
    rows = root_agent.status()
    assert {f"{user.name}/hello" for user in attackers} <= set(rows)
    for user in attackers:
        row = rows[f"{user.name}/hello"]
        assert (row["owner_uid"], row["runs"]) == (user.uid, 1)
    assert os.stat(root_agent.spool).st_mode & 0o7777 == 0o1733
