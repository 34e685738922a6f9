"""One user's jobs with starts far in the past must not freeze the agent for everyone.

An event's `time` may be anything from 1970 on (a spooled event may be old). A `finished`
event of a run started at 60 (1970-01-01 00:01) with schedule `* * * * *` makes the job's next
expected start 56 years ago; the watcher then counts up to MAX_SLOTS_PER_PASS (1000) missed
slots of that job per pass, one cron evaluation each, inside the agent's single event loop.
With a few hundred such jobs (the per-owner limit is 1000) a pass takes many seconds during
which nothing else is served: root's wrapper, within its 1 s budget, gets no answer and spools
its run, SNMP and `cronwrap status` stall; and the backlog takes ~29,000 passes to clear.

Now a pass evaluates at most SLOTS_PER_OWNER_PER_PASS of one owner's slots (at least one per
job) and runs as writer items of bounded work, so the victim's run is answered in between.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent_support import Agent
from cronwrap.wrapper.events import Cadence, Finished, new_event_id

from .support import User, as_user, cronwrap_as, stop, tool, user_environment

JOBS = 1000  # the per-owner job limit
TRIES = 20  # the victim's runs while the attacker's jobs arrive


def test_far_past_starts_do_not_stall_other_users(attackers: tuple[User, ...],
                                                  root_agent: Agent, shared_base: Path) -> None:
    attacker, victim, _ = attackers
    minutely = Cadence(schedule="* * * * *")
    lines = shared_base / "old-runs"
    lines.write_bytes(b"".join(
        Finished(new_event_id(), f"old{index}", 61.0, 4242, start_time=60.0, exit_status=0,
                 duration_ms=1000, cadence=minutely).to_wire() for index in range(JOBS)))
    with lines.open("rb") as stdin:  # sent as the attacker, while the victim runs its job
        sender = subprocess.Popen(as_user(attacker, tool("send_lines.py", str(root_agent.socket))),
                                  stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=user_environment(attacker))
    spooled: list[Path] = []
    try:
        for _ in range(TRIES):  # each run waits for its acknowledgement at most 1 s
            done = cronwrap_as(victim, root_agent, "-n", "report", "--", "true")
            assert done.returncode == 0, done.stderr
            spooled = list((root_agent.spool / str(victim.uid)).glob("*.json"))
            if spooled:
                break
    finally:
        stop(sender)
    assert spooled == [], "a run of the victim was spooled: the agent did not answer in 1 s"
