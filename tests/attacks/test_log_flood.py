"""One user's requests about their own jobs cannot flood the agent's log (the journal).

Every request below is allowed (the user's own jobs), and each used to write one WARNING
line: `cronwrap pause`/`resume`/`forget` in a loop, or pauses of a second that end on the
watcher's next pass, wrote a journal line per request, without end. Lines a user can cause
are limited like the agent's other warnings: the first per interval, then a count.
"""

from __future__ import annotations

import time

from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Finished, new_event_id
from cronwrap.wrapper.life_messages import ForgetRequest, PauseRequest, ResumeRequest

from .support import User, send_as

ROUNDS = 150


def finished(job: str) -> Finished:
    start = time.time()
    return Finished(new_event_id(), job, start, 4242, start_time=start, exit_status=0,
                    duration_ms=10)


def lines_about(agent: Agent, user: User) -> list[str]:
    return [line for line in agent.log.read_text().splitlines() if f" of {user.name} " in line
            or f"of {user.name}:" in line or f"request of {user.name}" in line]


def test_a_loop_of_pause_resume_and_forget_writes_a_bounded_log(
        attackers: tuple[User, ...], root_agent: Agent) -> None:
    attacker = attackers[0]
    requests: list[object] = [finished("mine")]
    for _ in range(ROUNDS):
        requests += [PauseRequest("mine", None, 3600.0), ResumeRequest("mine")]
    for index in range(ROUNDS):
        requests += [finished(f"gone{index}"), ForgetRequest(f"gone{index}")]
    replies = send_as(attacker, root_agent, *requests)  # type: ignore[arg-type]
    assert all(reply["ok"] for reply in replies), [r for r in replies if not r["ok"]][:3]
    lines = lines_about(root_agent, attacker)
    assert 1 <= len(lines) <= 10, f"{len(lines)} lines, e.g. {lines[:3]}"


def test_pauses_that_end_at_once_write_a_bounded_log(attackers: tuple[User, ...],
                                                     root_agent: Agent) -> None:
    attacker = attackers[0]
    jobs = [f"short{index}" for index in range(ROUNDS)]
    send_as(attacker, root_agent, *(finished(job) for job in jobs))
    replies = send_as(attacker, root_agent, *(PauseRequest(job, None, 1.0) for job in jobs))
    assert all(reply["ok"] for reply in replies)
    wait_for(lambda: all(row["state"] != "paused" for row in root_agent.status().values()),
             "every pause ended", timeout=30, proc=root_agent.proc, log=root_agent.log)
    lines = lines_about(root_agent, attacker)
    assert len(lines) <= 10, f"{len(lines)} lines, e.g. {lines[:3]}"
