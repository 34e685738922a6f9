"""A spooled file's name is a user's text: it reaches the agent's log escaped and rate limited.

A file name may hold anything but "/" and NUL, newlines and escape sequences too, and a user
names the files in their own spool directory. The drain's lines about a user's files go
through the spool's per-user limiter (escaped, a line a minute); but a file it could not
remove was said with a plain log call: the name raw, a line per file. A user who turns each
spooled file into a directory as soon as the agent has read it (inotify, renameat2
RENAME_EXCHANGE) makes that unlink fail every time: a newline in the name then forged a line
of the agent's log, once per file, without limit.
"""

from __future__ import annotations

import re
import time

from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Finished, new_event_id

from .support import User, run_as, tool
from .test_spool_junk import runs_of, spool_runs

FORGED_LINE = "2026-01-01 00:00:00 WARNING cronwrap.agent: job backup of root is fine"
NAME_TAIL = f"\n{FORGED_LINE}\x1b[2J\r"
RUNS = 40
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_spool_files_turned_into_directories_after_their_read_log_one_escaped_line(
        attackers: tuple[User, ...], root_agent: Agent) -> None:
    attacker, victim, _ = attackers
    start = time.time() - 10 * RUNS
    runs = [Finished(new_event_id(), "renamed", start + 10 * i + 1, 4242,
                     start_time=start + 10 * i, duration_ms=1000) for i in range(RUNS)]
    attack = run_as(attacker, *tool("swap_on_read.py", str(root_agent.spool), NAME_TAIL),
                    input=b"".join(run.to_wire() for run in runs).decode(), timeout=180)
    assert attack.returncode == 0, attack.stderr
    swapped, late = map(int, attack.stdout.split())
    assert swapped + late == RUNS, attack.stdout
    assert swapped > 0, "the agent unlinked every file before the attacker swapped it"
    spool_runs(victim, root_agent, "payroll", 2)
    wait_for(lambda: runs_of(root_agent, f"{attacker.name}/renamed") == RUNS
             and runs_of(root_agent, f"{victim.name}/payroll") == 2,
             "both users' spooled runs applied", proc=root_agent.proc, log=root_agent.log)
    log = root_agent.log.read_text(errors="surrogateescape")
    assert "Traceback" not in log, log
    found = CONTROL.search(log)
    assert found is None, f"the agent's log holds {found[0]!r}"
    lines = log.splitlines()
    assert not any(line.startswith(FORGED_LINE) for line in lines), "a forged log line"
    removals = [line for line in lines if "cannot remove" in line]
    assert len(removals) <= 1, f"{len(removals)} lines for {swapped} files: {removals[:3]}"
