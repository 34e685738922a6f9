"""A crontab in /etc/cron.d that a user owns speaks for that user only.

Debian's cron refuses such a file (WRONG FILE OWNER), and the agent reports its lines as
ignoredByCron; an admin who chowns a file there so a user can edit their jobs hands that user a
place to write lines naming root or anyone. Those lines once made rows for the users they named:
a `root cronwrap -n backup` line held root's real backup (from /etc/crontab) in ignoredByCron,
no run expected of it, and one line per name filled root's max_jobs_per_owner so root's next job
got no row. Now the file's lines are its owner's rows, and a line cron ignores never takes the
row of a line cron runs (a root-owned file others may write is refused by cron too: INSECURE
MODE).
"""

from __future__ import annotations

import os
from pathlib import Path

from agent_support import Agent, wait_for

from .support import FAST_AGENT, User, run_as

LIMIT = 20  # max_jobs_per_owner for this test


def agent_with_root_backup(base: Path) -> tuple[Agent, Path]:
    """An agent (not started) whose crontabs hold root's backup line in /etc/crontab."""
    config = base / "agent.toml"
    config.write_text(f"[agent]\ndiscovery_interval = 0.5\nmax_jobs_per_owner = {LIMIT}\n")
    agent = Agent(base / "agent", [*FAST_AGENT, "--config", str(config)])
    etc = agent.crontabs / "etc"
    (etc / "cron.d").mkdir(parents=True)
    (etc / "crontab").write_text("0 3 * * * root cronwrap -n backup -- true\n")
    return agent, etc


def write_as(user: User, path: Path, lines: list[str]) -> None:
    written = run_as(user, "sh", "-c", f"cat > {path}", input="".join(f"{x}\n" for x in lines))
    assert written.returncode == 0, written.stderr


def owners_rows(agent: Agent, user: str) -> list[str]:
    return [key.split("/", 1)[1] for key in agent.status() if key.startswith(f"{user}/")]


def test_a_user_owned_cron_d_file_makes_rows_for_its_owner_only(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent, etc = agent_with_root_backup(shared_base)
    webapp = etc / "cron.d" / "webapp"
    webapp.write_text("")
    os.chown(webapp, attacker.uid, attacker.gid)  # the admin's mistake cron refuses
    agent.start()
    try:
        wait_for(lambda: "root/backup" in agent.status(), "root's backup row",
                 proc=agent.proc, log=agent.log)
        forged = ["0 3 * * * root cronwrap -n backup -- true",
                  f"0 3 * * * {victim.name} cronwrap -n stolen -- true",
                  *(f"0 3 * * * root cronwrap -n x{n} -- true" for n in range(LIMIT + 5))]
        write_as(attacker, webapp, forged)
        wait_for(lambda: len(owners_rows(agent, attacker.name)) == LIMIT,
                 "the file's lines as its owner's rows", proc=agent.proc, log=agent.log)
        with (etc / "crontab").open("a") as crontab:
            crontab.write("0 4 * * * root cronwrap -n nightly -- true\n")
        wait_for(lambda: "root/nightly" in agent.status(), "root's next job's row",
                 proc=agent.proc, log=agent.log)

        status = agent.status()
        assert sorted(owners_rows(agent, "root")) == ["backup", "nightly"]
        backup = status["root/backup"]
        assert backup["state"] != "ignoredByCron" and backup["ignored_by_cron"] is None, backup
        assert backup["next_expected"] is not None, "a run of root's backup is still expected"
        assert not owners_rows(agent, victim.name)
        mine = owners_rows(agent, attacker.name)
        assert sorted(mine) == sorted(["backup", "stolen", *(f"x{n}" for n in range(LIMIT - 2))])
        assert all(status[f"{attacker.name}/{name}"]["state"] == "ignoredByCron"
                   for name in mine)
    finally:
        agent.close()
    text = agent.log.read_text()
    assert "Traceback" not in text
    assert " of root: " not in text and "root (uid 0) has" not in text


def test_a_line_in_a_file_others_may_write_never_takes_a_running_jobs_row(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker = attackers[0]
    agent, etc = agent_with_root_backup(shared_base)
    shared = etc / "cron.d" / "shared"
    shared.write_text("")
    shared.chmod(0o666)  # root's, writable by all: cron refuses it (INSECURE MODE)
    agent.start()
    try:
        wait_for(lambda: "root/backup" in agent.status(), "root's backup row",
                 proc=agent.proc, log=agent.log)
        write_as(attacker, shared, ["0 3 * * * root cronwrap -n backup -- true",
                                    "0 3 * * * root cronwrap -n marker -- true"])
        wait_for(lambda: "root/marker" in agent.status(), "the file read again",
                 proc=agent.proc, log=agent.log)
        status = agent.status()
        assert status["root/marker"]["state"] == "ignoredByCron"
        backup = status["root/backup"]
        assert backup["state"] != "ignoredByCron" and backup["ignored_by_cron"] is None, backup
        assert backup["next_expected"] is not None
    finally:
        agent.close()
    assert "job backup of root" not in agent.log.read_text()
