"""Issue 18: exactly once without a window; the ids the agent remembers are bounded per owner.

The agent remembers an applied event's id only while a copy of it may still come: a reply its
wrapper never read, a spooled file not yet unlinked (docs/protocol.md, "Exactly once"). A user
sends an event and stops reading (as a wrapper whose time budget ran out), then 12,000 more
(2,000 over the socket, 10,000 through the spool), then spools the retry of the first one: it
counts once, and the agent kept one id for that user throughout, not one per event. At
[agent] event_ids_per_owner events in doubt the user's socket events are answered busy (they
are spooled, nothing is lost) until the retries are drained. Ids are each owner's own: another
user's event with the same id is a different event.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from agent_support import Agent, wait_for
from cronwrap.wrapper.events import Event, Finished, Started, new_event_id

from .support import FAST_AGENT, User, run_as, send_as, spool_as, tool

pytestmark = pytest.mark.slow

IN_DOUBT = 5  # event_ids_per_owner
LIVE = 2000
SPOOLED = 10000


def remembered(agent: Agent) -> dict[int, int]:
    """How many event ids the state database keeps, per owner uid."""
    with sqlite3.connect(f"file:{agent.state / 'agent.db'}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT owner_uid, count(*) FROM applied GROUP BY owner_uid"))


def finished(job: str, number: int, event_id: str | None = None) -> Finished:
    start = 1_600_000_000.0 + 60 * number
    return Finished(event_id or new_event_id(), job, start + 1, os.getpid(), start_time=start,
                    duration_ms=1000)


def remembered_after(agent: Agent, user: User, number: int) -> dict[int, int]:
    """The ids the database keeps once `user` had one more event applied, whose commit
    carries every deletion settled before it (and which is itself in doubt until its reply
    is read): a point where the database shows what the agent remembers."""
    assert send_as(user, agent, Started(new_event_id(), "sync", 1_600_000_000.0 + number,
                                        os.getpid()))[0]["ok"]
    return remembered(agent)


def runs(agent: Agent, user: User, job: str) -> int:
    return agent.status().get(f"{user.name}/{job}", {}).get("runs", 0)


def as_user_tool(user: User, name: str, target: Path, *events: Event) -> None:
    wire = b"".join(event.to_wire() for event in events).decode()
    result = run_as(user, *tool(name, str(target)), input=wire)
    assert result.returncode == 0 and result.stdout.strip() == str(len(events)), result.stderr


def spool_flood(user: User, agent: Agent, count: int) -> None:
    result = run_as(user, *tool("spool_many.py", str(agent.spool), "flood", str(count)))
    assert result.returncode == 0, result.stderr


def test_a_retry_after_12000_events_counts_once_and_ids_are_bounded_per_owner(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    flooder, victim, _ = attackers
    config = shared_base / "agent.toml"
    # the flood is of ids, not of events a second: the socket's rate budget is raised
    config.write_text(f"[agent]\nevent_ids_per_owner = {IN_DOUBT}\n"
                      "events_per_second_per_owner = 100000\n")
    agent = Agent(shared_base / "agent", [*FAST_AGENT, "--config", str(config)]).start()
    try:
        start = Started(new_event_id(), "backup", 1_600_000_000.0, os.getpid())
        end = finished("backup", 0)
        assert [r["ok"] for r in send_as(victim, agent, start, end)] == [True, True]
        first = finished("flood", -1)
        as_user_tool(flooder, "send_unread.py", agent.socket, first)  # its reply is lost
        wait_for(lambda: runs(agent, flooder, "flood") == 1, "the first event applied",
                 proc=agent.proc, log=agent.log)
        assert remembered(agent) == {flooder.uid: 1}  # the victim's replies were read

        replies = send_as(flooder, agent, *(finished("flood", n) for n in range(LIVE)))
        assert all(reply["ok"] for reply in replies)
        spool_flood(flooder, agent, SPOOLED)
        wait_for(lambda: runs(agent, flooder, "flood") == 1 + LIVE + SPOOLED,
                 "the flood applied", timeout=300, proc=agent.proc, log=agent.log)
        # 12,000 events later: one id of the flooder's (the sync event: one of the victim's)
        assert remembered_after(agent, victim, 1) == {flooder.uid: 1, victim.uid: 1}

        # the first event's retry, 12,000 events of its owner later: counted once
        as_user_tool(flooder, "spool_retries.py", agent.spool, first)
        wait_for(lambda: not list(agent.spool.glob("*/*.json")), "the retry drained",
                 proc=agent.proc, log=agent.log)
        assert runs(agent, flooder, "flood") == 1 + LIVE + SPOOLED
        assert remembered_after(agent, victim, 2) == {victim.uid: 1}

        # another user's event with the flooder's id is that user's own: applied
        assert send_as(victim, agent, finished("backup", 1, first.id))[0]["ok"]
        assert runs(agent, victim, "backup") == 2

        # IN_DOUBT events whose replies were lost: the next one waits (busy), nothing is lost
        lost = [finished("flood", LIVE + n) for n in range(IN_DOUBT)]
        as_user_tool(flooder, "send_unread.py", agent.socket, *lost)
        total = 1 + LIVE + SPOOLED + IN_DOUBT
        wait_for(lambda: runs(agent, flooder, "flood") == total, "the lost replies' events",
                 proc=agent.proc, log=agent.log)
        waiting = finished("flood", LIVE + IN_DOUBT)
        reply = send_as(flooder, agent, waiting)[0]
        assert (reply["ok"], reply.get("reason")) == (False, "busy"), reply
        assert "event_ids_per_owner" in reply["error"]
        assert send_as(victim, agent, finished("backup", 2))[0]["ok"]  # others are not held
        as_user_tool(flooder, "spool_retries.py", agent.spool, *lost)
        spool_as(flooder, agent, waiting)  # as the wrapper does with a busy reply
        wait_for(lambda: not list(agent.spool.glob("*/*.json")), "the retries drained",
                 proc=agent.proc, log=agent.log)
        assert runs(agent, flooder, "flood") == total + 1
        assert send_as(flooder, agent, finished("flood", LIVE + IN_DOUBT + 1))[0]["ok"]
        assert runs(agent, flooder, "flood") == total + 2 and runs(agent, victim, "backup") == 3
        assert remembered_after(agent, victim, 3) == {victim.uid: 1}
    finally:
        agent.close()
    assert "Traceback" not in agent.log.read_text()
