"""Issue 13 item 5: a schedule that never fires cannot switch off the watcher for everyone.

`0 0 30 2 *` is valid cron syntax but matches no date, so asking for its next start fails.
Declared in an event, it is refused with a clear reply (spooled: refused, counted, removed, so
the sender's later events still drain); a row that already has one (an old database, a
crontab line) is skipped alone: every other job is still watched.
"""

from __future__ import annotations

import time
from pathlib import Path

from agent_support import Agent, wait_for
from cronwrap.agent.model import JobKey, JobRecord
from cronwrap.agent.store import Job, Store
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

from .support import User, send_as, spool_as, start_root_agent

NEVER = "0 0 30 2 *"
MINUTELY = Cadence(schedule="* * * * *")


def run(job: str, start: float, cadence: Cadence, pid: int = 4242) -> tuple[Started, Finished]:
    return (Started(new_event_id(), job, start, pid, cadence=cadence),
            Finished(new_event_id(), job, start + 1, pid, start_time=start, exit_status=0,
                     duration_ms=1000, cadence=cadence))


def watched(agent: Agent, victim: User) -> None:
    """The victim's overdue minutely job is declared missed: the watcher's passes still run.

    (With no crontab line running it, it is retired in the same pass: its misses count.)"""
    send_as(victim, agent, *run("report", time.time() - 600, MINUTELY))
    key = f"{victim.name}/report"
    wait_for(lambda: agent.status()[key]["misses"] > 0, f"{key} declared missed",
             timeout=15, proc=agent.proc, log=agent.log)


def test_never_firing_schedule_is_refused_live(attackers: tuple[User, ...],
                                              root_agent: Agent) -> None:
    attacker, victim, _ = attackers
    now = time.time()
    replies = send_as(
        attacker, root_agent,
        Started(new_event_id(), "evil", now, 4242, cadence=MINUTELY),
        # an earlier run's finish redeclaring the cadence: once the way into the table
        Finished(new_event_id(), "evil", now, 4242, start_time=now - 60, exit_status=0,
                 duration_ms=1, cadence=Cadence(schedule=NEVER)),
        Started(new_event_id(), "evil2", now, 4243, cadence=Cadence(schedule=NEVER)))
    assert replies[0] == {"ok": True}
    for reply in replies[1:]:
        assert reply == {"ok": False, "error": f"schedule {NEVER!r} never fires"}
    watched(root_agent, victim)
    rows = root_agent.status()
    assert rows[f"{attacker.name}/evil"]["cadence"] == {"schedule": "* * * * *"}
    assert f"{attacker.name}/evil2" not in rows
    assert "Traceback" not in root_agent.log.read_text()


def test_spooled_never_firing_schedule_does_not_block_later_events(attackers: tuple[User, ...],
                                                                   root_agent: Agent) -> None:
    user = attackers[0]
    start = time.time() - 100
    bad = Started(new_event_id(), "mine", start - 10, 4242, cadence=Cadence(schedule=NEVER))
    later = [event for i in range(3) for event in run("mine", start + 10 * i, MINUTELY)]
    spool_as(user, root_agent, bad, *later)
    directory = root_agent.spool / str(user.uid)
    wait_for(lambda: not list(directory.glob("*.json")), "the spool drained",
             timeout=15, proc=root_agent.proc, log=root_agent.log)
    assert root_agent.status()[f"{user.name}/mine"]["runs"] == 3
    log = root_agent.log.read_text()
    assert f"{bad.id}.json refused and removed: schedule {NEVER!r} never fires" in log
    assert "Traceback" not in log


def test_bad_row_in_an_old_database_stops_no_one(attackers: tuple[User, ...],
                                                 shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = Agent(shared_base / "agent")
    agent.state.mkdir(parents=True, mode=0o700)
    store = Store(agent.state)  # as an older agent that took any schedule left it
    legacy = JobRecord(JobKey(attacker.uid, "legacy"), attacker.name,
                       next_expected=time.time() - 3600)
    store.commit([Job(legacy, Cadence(schedule=NEVER), reported=True)], [], [], {})
    store.close()
    agent = start_root_agent(agent.base)  # the running one: closed below
    try:
        watched(agent, victim)
        watched(agent, victim)  # more passes: still one line about the bad row
    finally:
        agent.close()
    log = agent.log.read_text()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "legacy" in line]
    assert len(lines) <= 1 and all(NEVER in line for line in lines), lines  # one line at most


def test_never_firing_crontab_line_stops_no_one(attackers: tuple[User, ...],
                                                shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = Agent(shared_base / "agent")
    crontabs = agent.crontabs / "var/spool/cron/crontabs"
    crontabs.mkdir(parents=True)
    (crontabs / attacker.name).write_text(f"{NEVER} cronwrap -n leapless -- true\n")
    agent = start_root_agent(agent.base)  # the running one: closed below
    try:
        watched(agent, victim)
    finally:
        agent.close()
    assert "Traceback" not in agent.log.read_text()
