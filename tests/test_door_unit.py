"""Refusals and deferrals at the door are core events: the transition decides the statistic
and the line, the core alone counts them (AgentCore.apply), and listeners see the count."""

from __future__ import annotations

from pathlib import Path

from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.lifeevents import Deferral, RowOverLimit, WorkDeferred
from cronwrap.agent.model import JobKey
from cronwrap.agent.store import Store
from cronwrap.agent.transitions.door import DoorLog, Statistic, door_transition


def test_each_door_event_counts_one_statistic_and_says_one_class() -> None:
    config = Config()
    decided = {work: door_transition(WorkDeferred(1000, work, "why", left=7), config)
               for work in Deferral}
    assert {work: outcome.counted for work, outcome in decided.items()} == {
        Deferral.event: Statistic.events_deferred,
        Deferral.event_in_doubt: Statistic.events_deferred,
        Deferral.status: Statistic.status_deferred,
        Deferral.drain: None,  # the backlog gauge shows it; one line a minute says it
        Deferral.crontab: Statistic.crontab_reads_deferred}
    assert decided[Deferral.status].line is None
    drain = decided[Deferral.drain].line
    assert drain is not None and drain.log == DoorLog.drain
    assert drain.detail.startswith("7 spooled events of uid 1000 left for later passes")
    refused = door_transition(RowOverLimit(JobKey(1000, "j"), "alice", "a crontab line"), config)
    assert refused.counted == Statistic.rows_refused and refused.line is not None
    assert "no row for job j from a crontab line" in refused.line.detail
    again = RowOverLimit(JobKey(1000, "j"), "alice", "a crontab line", again=True)
    assert door_transition(again, config) == type(refused)(None, None)


def test_the_core_counts_what_sources_note_and_tells_listeners(tmp_path: Path) -> None:
    core = AgentCore(Store(tmp_path), Config())
    seen = []

    class Listener:
        def job_changed(self, record: object) -> None:
            pass

        def job_removed(self, key: object) -> None:
            pass

        def stats_changed(self, stats: object) -> None:
            seen.append((stats.events_deferred, stats.status_deferred))  # type: ignore[attr-defined]

    core.add_listener(Listener())  # type: ignore[arg-type]
    for work in (Deferral.event, Deferral.event_in_doubt, Deferral.status, Deferral.drain):
        core.note(WorkDeferred(1000, work, "over"))
    assert seen == [(0, 0), (1, 0), (2, 0), (2, 1)]
    assert (core.stats().events_deferred, core.stats().status_deferred) == (2, 1)
