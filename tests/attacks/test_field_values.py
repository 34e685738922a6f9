"""Extreme and hostile field values in a user's own events cannot hurt anyone else.

A user may put anything the schema lets through into their own events: the longest names,
times at the ends of the allowed range, and any text in the free-text fields (`log_path`,
`log_problem`). JSON lets them write a lone UTF-16 surrogate (`"\\ud800"`), which Python
decodes into a str that no UTF-8 encoder (sqlite, SNMP) will take; and control characters,
which `cronwrap status` would print into root's terminal.
"""

from __future__ import annotations

import json
import time

from agent_support import Agent, run_cronwrap, wait_for
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

from .support import User, send_as, spool_as

SURROGATE = "\ud800"


def finished(job: str, start: float, **fields: object) -> Finished:
    return Finished(new_event_id(), job, start + 1, 4242, start_time=start, exit_status=1,
                    duration_ms=1000, **fields)  # type: ignore[arg-type]


def test_an_unencodable_string_is_kept_escaped_and_stalls_no_commit(
        attackers: tuple[User, ...], root_agent: Agent) -> None:
    """Once, such a string failed the whole batch's commit: everyone's events in it were
    refused, and the agent said its state disk had failed."""
    attacker, victim, _ = attackers
    now = time.time()
    replies = send_as(attacker, root_agent,
                      finished("poison", now, log_path=SURROGATE),
                      finished("poison2", now, log_problem=f"disk full{SURROGATE}"))
    assert replies == [{"ok": True}, {"ok": True}]
    assert send_as(victim, root_agent, finished("report", now)) == [{"ok": True}]
    rows = root_agent.status()
    assert rows[f"{victim.name}/report"]["runs"] == 1
    assert rows[f"{attacker.name}/poison"]["last_log_path"] == "\\ud800"
    assert rows[f"{attacker.name}/poison2"]["log_problem"] == "disk full\\ud800"
    log = root_agent.log.read_text()
    assert "cannot commit" not in log and "Traceback" not in log, log


def test_a_spooled_unencodable_string_blocks_nothing(attackers: tuple[User, ...],
                                                     root_agent: Agent) -> None:
    attacker = attackers[0]
    start = time.time() - 100
    poison = finished("mine", start - 10, log_path=SURROGATE)
    later = [finished("mine", start + 10 * i) for i in range(3)]
    spool_as(attacker, root_agent, poison, *later)
    directory = root_agent.spool / str(attacker.uid)
    wait_for(lambda: not list(directory.glob("*.json")), "the spool drained",
             timeout=15, proc=root_agent.proc, log=root_agent.log)
    assert root_agent.status()[f"{attacker.name}/mine"]["runs"] == 4
    log = root_agent.log.read_text()
    assert "cannot commit" not in log and "Traceback" not in log, log


def test_control_characters_never_reach_roots_terminal(attackers: tuple[User, ...],
                                                        root_agent: Agent) -> None:
    attacker = attackers[0]
    forged = "\n" + "root/backup: everything is fine\x1b]0;owned\x07\x1b[2J\r"
    now = time.time()
    replies = send_as(attacker, root_agent,
                      Started(new_event_id(), "noisy", now, 4242, cadence=Cadence()),
                      finished("noisy", now, log_problem=forged, log_path="/tmp/x\x1b[2J"))
    assert all(reply["ok"] for reply in replies), replies
    result = run_cronwrap(root_agent, "status")
    assert result.returncode in (0, 2), result
    shown = result.stdout + result.stderr
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown, shown
    assert "\nroot/backup: everything is fine" not in shown, shown
    assert json.loads(run_cronwrap(root_agent, "status", "--json").stdout)  # JSON escapes them
