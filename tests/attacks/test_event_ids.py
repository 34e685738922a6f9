"""Issue 18: the event ids the agent remembers are bounded per owner; retries still count once.

A user floods the agent with events (over the socket and through the spool), each with a new
id. The ids remembered for that user, in memory and in the state database, stay at
[agent] event_ids_per_owner; another user's ids are not pushed out, so that user's retried
event still counts once, and so does the flooder's own retry of a recent event, through the
socket or the spool.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Finished, Started, new_event_id

from .support import FAST_AGENT, User, send_as, spool_as

PER_OWNER = 300
LIVE = 1000
SPOOLED = 500


def remembered(agent: Agent) -> dict[int, int]:
    """How many event ids the state database keeps, per owner uid."""
    with sqlite3.connect(f"file:{agent.state / 'agent.db'}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT owner_uid, count(*) FROM applied GROUP BY owner_uid"))


def finished(job: str, number: int) -> Finished:
    start = 1_700_000_000.0 + 60 * number
    return Finished(new_event_id(), job, start + 1, os.getpid(), start_time=start,
                    duration_ms=1000)


def runs(agent: Agent, user: User, job: str) -> int:
    return agent.status().get(f"{user.name}/{job}", {}).get("runs", 0)


def test_an_event_id_flood_is_bounded_per_owner(attackers: tuple[User, ...],
                                                shared_base: Path) -> None:
    flooder, victim, _ = attackers
    config = shared_base / "agent.toml"
    # the flood is of ids, not of events a second: the socket's rate budget is raised
    config.write_text(f"[agent]\nevent_ids_per_owner = {PER_OWNER}\n"
                      "events_per_second_per_owner = 100000\n")
    agent = Agent(shared_base / "agent", [*FAST_AGENT, "--config", str(config)]).start()
    try:
        start = Started(new_event_id(), "backup", 1_700_000_000.0, os.getpid())
        end = finished("backup", 0)
        assert [r["ok"] for r in send_as(victim, agent, start, end)] == [True, True]

        flood = [finished("flood", n) for n in range(LIVE + SPOOLED)]
        replies = send_as(flooder, agent, *flood[:LIVE])
        assert all(reply["ok"] for reply in replies)
        spool_as(flooder, agent, *flood[LIVE:])
        wait_for(lambda: runs(agent, flooder, "flood") == LIVE + SPOOLED, "the flood applied",
                 timeout=300, proc=agent.proc, log=agent.log)

        kept = remembered(agent)
        assert kept == {victim.uid: 2, flooder.uid: PER_OWNER}, kept

        # retries: the victim's (pushed out by nobody), the flooder's newest, live and spooled
        assert send_as(victim, agent, end)[0]["ok"]
        assert send_as(flooder, agent, flood[-1])[0]["ok"]
        spool_as(flooder, agent, flood[-2], finished("flood", LIVE + SPOOLED))
        wait_for(lambda: runs(agent, flooder, "flood") == LIVE + SPOOLED + 1,
                 "the new spooled run", timeout=60, proc=agent.proc, log=agent.log)
        wait_for(lambda: not list(agent.spool.glob("*/*.json")), "the spool drained",
                 proc=agent.proc, log=agent.log)
        assert runs(agent, victim, "backup") == 1
        assert runs(agent, flooder, "flood") == LIVE + SPOOLED + 1
        assert remembered(agent)[flooder.uid] == PER_OWNER
    finally:
        agent.close()
    assert "Traceback" not in agent.log.read_text()
