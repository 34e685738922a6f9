"""Issue 13 item 3: another user's `spool/<uid>` cannot cost a user the runs spooled while the
agent is down.

Anyone may create names in the spool root (01733), so the attacker creates the victim's
`<uid>` (a directory of their own, or a symlink to one) before the victim ever spools. The
victim's wrapper then spools into a fresh `<uid>.<random>` directory of its own, which the
attacker can neither predict nor take; the agent drains it like `<uid>`, counts every run
once, and removes the emptied fallback directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from agent_support import wait_for
from cronwrap.wrapper.events import Finished, new_event_id

from .support import FAST_AGENT, User, cronwrap_as, owned_dir
from .wrapping import cronwrap_root, dead_agent, empty_config, files_under, plant


@pytest.mark.parametrize("how", ["directory", "symlink"])
@pytest.mark.parametrize("victim_is_root", [False, True], ids=["user", "root"])
def test_a_squatted_spool_dir_loses_no_run(attackers: tuple[User, ...], shared_base: Path,
                                           how: str, victim_is_root: bool) -> None:
    attacker, victim, _ = attackers
    uid, owner = (0, "root") if victim_is_root else (victim.uid, victim.name)
    agent = dead_agent(shared_base / "agent")
    trap = owned_dir(shared_base / "trap", attacker, 0o777)
    squatted = agent.spool / str(uid)
    if how == "directory":
        plant(attacker, "mkdir", "-m", "0777", str(squatted))
    else:
        plant(attacker, "ln", "-s", str(trap), str(squatted))

    private = owned_dir(shared_base / "victim", victim, 0o755) if not victim_is_root else \
        shared_base / "root"
    options = ["--config", str(empty_config(shared_base)), "--log-dir", str(private / "logs"),
               "--lock-dir", str(private / "locks"), "-n", "payroll", "--"]
    for command in (["true"], ["sh", "-c", "exit 3"]):
        run = (cronwrap_root(agent, *options, *command) if victim_is_root
               else cronwrap_as(victim, agent, *options, *command))
        assert run.returncode == (0 if command == ["true"] else 3)
        assert "spool" not in run.stderr, run.stderr
    assert files_under(trap) == []
    if how == "directory":
        assert files_under(squatted) == []

    agent.extra = list(FAST_AGENT)
    agent.start()
    try:
        rows = wait_for(lambda: agent.status().get(f"{owner}/payroll"), "the spooled runs")
        wait_for(lambda: agent.status()[f"{owner}/payroll"]["runs"] == 2, "both runs counted")
        rows = agent.status()[f"{owner}/payroll"]
        assert (rows["runs"], rows["failures"], rows["owner_uid"]) == (2, 1, uid)
        wait_for(lambda: os.listdir(agent.spool) == [str(uid)],
                 "the emptied fallback directory removed, the squat left alone")
    finally:
        agent.close()
    assert not [key for key in rows if key.startswith(f"{attacker.name}/")]


def test_a_fallback_name_grants_nothing(attackers: tuple[User, ...], shared_base: Path) -> None:
    """A directory named like root's fallback (`0.<hex>`) but owned by the attacker speaks for
    nobody: its events are not applied, to root's jobs or the attacker's."""
    attacker = attackers[0]
    agent = dead_agent(shared_base / "agent")
    fake = agent.spool / f"0.{'ab' * 8}"
    plant(attacker, "mkdir", "-m", "0700", str(fake))
    event = Finished(new_event_id(), "backup", time.time(), 4242, start_time=time.time(),
                     exit_status=0)
    plant(attacker, "sh", "-c", f"printf '%s' '{event.to_wire().decode().strip()}' "
          f"> {fake / (event.id + '.json')}")
    agent.extra = list(FAST_AGENT)
    agent.start()
    try:
        wait_for(lambda: "0.abab" in agent.log.read_text(), "the fake directory skipped")
        assert agent.status() == {}
    finally:
        agent.close()
    assert len(files_under(fake)) == 1
