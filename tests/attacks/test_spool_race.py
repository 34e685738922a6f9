"""Issue 13 item 1: a user racing their own spool directory cannot cost another user an event."""

from __future__ import annotations

from pathlib import Path

from agent_support import wait_for

from .support import User, run_as, start_as, start_root_agent, stop, tool

RUNS = 150


def spooled(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


def test_swapping_own_spool_dir_with_a_symlink_to_anothers(attackers: tuple[User, ...],
                                                           shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = start_root_agent(shared_base / "agent", "--spool-interval", "0.02")
    try:
        race = start_as(attacker, *tool("swap_spool_dir.py", str(agent.spool), str(victim.uid)))
        assert race.stdout is not None and race.stdout.readline() == "ready\n", stop(race)
        try:
            result = run_as(victim, *tool("spool_runs.py", str(agent.spool), "payroll",
                                          str(RUNS), "0.01"))
            assert result.returncode == 0, result.stderr
            victim_dir = agent.spool / str(victim.uid)
            wait_for(lambda: not spooled(victim_dir), "the victim's spool drained")
        finally:
            swaps, errors = stop(race)
        assert int(swaps) > 0, errors
        rows = agent.status()
    finally:
        agent.close()
    assert rows[f"{victim.name}/payroll"]["runs"] == RUNS
    assert rows[f"{victim.name}/payroll"]["owner_uid"] == victim.uid
    assert not [key for key in rows if key.startswith(f"{attacker.name}/")]
    log = agent.log.read_text()
    assert "Traceback" not in log
