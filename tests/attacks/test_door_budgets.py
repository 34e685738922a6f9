"""Per-user budgets at the agent's door: log lines, events a second, status work.

Whatever a user sends, what it costs the root agent is bounded per user, and other users are
served in the meantime: their log lines are classes of problem counted per user (3,000 events
with distinct bogus zones once wrote 3,000 lines), an event flood is refused with "busy" so
the wrapper spools (each refusal counted in the MIB, no event lost), and a flood of status
requests is built in slices charged by rows examined, with other users' events applied in
between (four connections asking about a missing job once took another user's event from
3 ms to 129 ms: every request sorted every job).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_support import wait_for
from cronwrap.agent.model import JobKey, JobRecord
from cronwrap.agent.store import Job, Store
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id
from e2e_support import Rig, rig

from .support import User, run_as, send_as, start_as, stop, tool

pytestmark = pytest.mark.integration


def door_rig(base: Path, budgets: str):
    """A standalone agent (SNMP on loopback) with the given [agent] budgets."""
    return rig(base, agentx=False, listen=True, config=f"[agent]\n{budgets}\n",
               agent_options=("--watch-interval", "0.5", "--spool-interval", "0.2"))


def scalar(r: Rig, name: str) -> int:
    (value,) = r.get(f"CRON-JOBS-MIB::{name}.0")
    return int(value.split(": ")[1])


def started_line(name: str, **cadence: object) -> str:
    return json.dumps({"v": 1, "type": "started", "id": new_event_id(), "job": name,
                       "time": time.time(), "pid": 4242, "cadence": cadence}) + "\n"


def send_lines_in_parallel(user: User, r: Rig, lines: list[str], connections: int
                           ) -> list[dict[str, object]]:
    """Send `lines` from `connections` processes of `user` at once; every reply."""
    share = len(lines) // connections

    def send(index: int) -> list[dict[str, object]]:
        part = "".join(lines[index * share:(index + 1) * share])
        result = run_as(user, *tool("send_lines.py", str(r.agent.socket)), input=part,
                        timeout=300)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    with ThreadPoolExecutor(connections) as pool:
        return [reply for replies in pool.map(send, range(connections)) for reply in replies]


def lines_about(r: Rig, user: User) -> list[str]:
    return [line for line in r.agent.log.read_text().splitlines() if f"uid {user.uid}" in line]


def test_floods_of_distinct_bogus_values_write_a_few_log_lines(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    with door_rig(shared_base, "events_per_second_per_owner = 100000") as r:
        zones = [started_line(f"z{index}", schedule="0 3 * * *", tz=f"Bogus/Zone{index}")
                 for index in range(3000)]
        replies = send_lines_in_parallel(attacker, r, zones, 4)
        everys = [started_line(f"e{index}", every=1 + index / 1000) for index in range(1000)]
        replies += send_lines_in_parallel(attacker, r, everys, 4)
        assert [reply["ok"] for reply in replies] == [False] * 4000
        assert scalar(r, "cronEventsRejected") == 4000
        about_attacker = lines_about(r, attacker)
        assert 1 <= len(about_attacker) <= 3, about_attacker  # a class each, not a value each
        assert sum("unknown time zone" in line for line in about_attacker) <= 1
        assert sum("below the agent's floor" in line for line in about_attacker) <= 1
        # the shared table of causes is not the attacker's: the victim's own cause is logged
        assert send_as(victim, r.agent, Started(new_event_id(), "x", time.time(), 1,
                                                Cadence(every=1.0)))[0]["ok"] is False
        wait_for(lambda: lines_about(r, victim), "a line about the victim's refused event",
                 proc=r.agent.proc, log=r.agent.log)
        assert scalar(r, "cronLogLinesLeftOut") >= 4000 - len(about_attacker)


def test_an_event_flood_is_refused_busy_counted_spooled_and_never_lost(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    runs = 150
    with door_rig(shared_base, "events_per_second_per_owner = 5") as r:
        flood = run_as(attacker, *tool("report_runs.py", str(r.agent.socket), str(r.agent.spool),
                                       "flood", str(runs)), timeout=600)
        assert (flood.returncode, flood.stderr) == (0, ""), flood.stderr  # spooled, silently
        deferred = scalar(r, "cronEventsDeferred")
        assert deferred > 0
        now = time.time()
        assert send_as(victim, r.agent, Finished(new_event_id(), "mine", now, 1, start_time=now,
                                                 duration_ms=1)) == [{"ok": True}]
        wait_for(lambda: r.agent.status().get(f"{attacker.name}/flood", {}).get("runs") == runs,
                 f"all {runs} runs counted", timeout=120, proc=r.agent.proc, log=r.agent.log)
        assert not list((r.agent.spool / str(attacker.uid)).glob("*.json"))
        assert scalar(r, "cronEventsAccepted") == 2 * runs + 1  # each event once
        assert scalar(r, "cronEventsDeferred") == deferred
        # the first refusal at the socket; the rest are counted. The spooled flood may also
        # meet the drain's own budget: that is one line of another class, never one an event
        about_attacker = lines_about(r, attacker)
        assert sum("over the event rate" in line for line in about_attacker) == 1, about_attacker
        assert sum("left for later passes" in line for line in about_attacker) <= 1, about_attacker
        assert len(about_attacker) <= 2, about_attacker


def seed(state: Path, user: User, jobs: int) -> None:
    """`jobs` rows of `user` in the agent's state before it starts (as many runs would make)."""
    state.mkdir(parents=True, exist_ok=True)
    store = Store(state)
    store.commit([Job(JobRecord(JobKey(user.uid, f"job{index:04d}"), user.name, runs=1))
                  for index in range(jobs)], [], [], {})
    store.close()


def test_a_status_flood_lets_another_users_event_in_between_its_slices(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    seed(shared_base / "agent" / "state", attacker, 900)
    with door_rig(shared_base, "status_rows_per_second = 300") as r:
        listing = start_as(attacker, *tool("status_flood.py", str(r.agent.socket), "3"))
        missing = [start_as(attacker, *tool("status_flood.py", str(r.agent.socket), "100000",
                                            "no-such-job")) for _ in range(3)]
        try:
            wait_for(lambda: scalar(r, "cronStatusDeferred") > 0, "status work made to wait",
                     proc=r.agent.proc, log=r.agent.log)
            now = time.time()
            assert send_as(victim, r.agent, Finished(new_event_id(), "mine", now, 1,
                                                     start_time=now, duration_ms=1)) == [
                {"ok": True}]
            assert r.agent.status()[f"{victim.name}/mine"]["runs"] == 1
            # applied while the flood still had slices to go: not one listing has finished
            assert listing.poll() is None and all(proc.poll() is None for proc in missing)
        finally:
            out, _ = stop(listing)
            for proc in missing:
                stop(proc)
        assert "reply 3" not in out
