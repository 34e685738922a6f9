"""Standalone-agent test helpers: MibViews over cronwrap instances and agents on a loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import agentx_views
import pytest
from cronwrap.agent import mib, mibvalues
from cronwrap.agent.mibview import Oid
from cronwrap.agent.model import Notification, NotificationKind
from cronwrap.agent.snmp_config import SnmpConfig
from cronwrap.agent.standalone import StandaloneFrontend
from netsnmp import free_port
from pysnmp.proto import rfc1902

SUBTREE: Oid = mib.ROOT
JOB_ENTRY: Oid = mib.JOB_ENTRY
row_index = mibvalues.row_index
NOTIFY_OWNER = SUBTREE + (2, 1)
NOTIFY_NAME = SUBTREE + (2, 2)
FAILURES = JOB_ENTRY + (4,)


class SortedView(agentx_views.SortedView):
    """A MibView over fixed cronwrap instances: a Get under a value column is noSuchInstance."""

    def __init__(self, values: dict[Oid, Any]) -> None:
        super().__init__(values.items(), objects=[mib.column_oid(c) for c in mib.VALUE_COLUMNS])


def job_rows(count: int) -> dict[Oid, Any]:
    """`count` jobs of every value column, plus cronJobCount.0."""
    count_oid = mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)
    values: dict[Oid, Any] = {count_oid: rfc1902.Gauge32(count)}
    for number in range(count):
        index = row_index("root", f"job-{number:05d}")
        for column in mib.VALUE_COLUMNS:
            values[mib.column_oid(column) + index] = (
                rfc1902.OctetString(b"") if column in (10, 11, 14)
                else rfc1902.Integer32(number) if column in (8, 9, 13)
                else rfc1902.Counter32(number * column)
            )
    return values


def notification_varbinds(note: Notification) -> tuple[tuple[int, ...], list[tuple[Any, Any]]]:
    """The in-test stand-in for mibvalues.notification_varbinds: trap OID and a few objects."""
    if note.job.key.name == "bad-one":
        raise ValueError("no varbinds for this job")
    number = list(NotificationKind).index(note.kind) + 1
    index = row_index(note.job.owner, note.job.key.name)
    return SUBTREE + (0, number), [
        (NOTIFY_OWNER, rfc1902.OctetString(note.job.owner)),
        (NOTIFY_NAME, rfc1902.OctetString(note.job.key.name)),
        (FAILURES + index, rfc1902.Counter32(note.job.failures)),
    ]


class RunningAgent:
    """A StandaloneFrontend served by an event loop in a background thread."""

    def __init__(self, frontend: StandaloneFrontend, queue: asyncio.Queue[Notification] | None,
                 loop: asyncio.AbstractEventLoop, task: Future[None]) -> None:
        self.frontend = frontend
        self.queue = queue
        self.loop = loop
        self.task = task
        self.address = f"127.0.0.1:{frontend.bound[0][1]}"

    def notify(self, note: Notification) -> None:
        assert self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, note)


class AgentRunner:
    """Starts agents in one background event loop and stops them all at the end."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running: list[RunningAgent] = []

    def start(self, config: SnmpConfig | None = None, view: SortedView | None = None,
              listen: list[str] | None = None, with_queue: bool = False) -> RunningAgent:
        async def create() -> tuple[StandaloneFrontend, asyncio.Queue[Notification] | None,
                                    asyncio.Task[None]]:
            queue: asyncio.Queue[Notification] | None = asyncio.Queue() if with_queue else None
            frontend = StandaloneFrontend(
                listen or [f"udp:127.0.0.1:{free_port()}"], view or SortedView(job_rows(3)),
                SUBTREE, config or SnmpConfig(), self.state_dir, queue, notification_varbinds)
            task = asyncio.create_task(frontend.run())
            ready = asyncio.create_task(frontend.wait_ready())
            await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                ready.cancel()
                task.result()
            return frontend, queue, task

        frontend, queue, task = asyncio.run_coroutine_threadsafe(create(), self.loop).result(30)
        agent = RunningAgent(frontend, queue, self.loop, task)
        self.running.append(agent)
        return agent

    def stop(self, agent: RunningAgent) -> None:
        async def cancel() -> None:
            agent.task.cancel()
            await asyncio.gather(agent.task, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(30)
        self.running.remove(agent)

    def close(self) -> None:
        for agent in list(self.running):
            self.stop(agent)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[AgentRunner]:
    state = tmp_path / "state"
    state.mkdir()
    agent_runner = AgentRunner(state)
    yield agent_runner
    agent_runner.close()
