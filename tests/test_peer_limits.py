"""Per-uid budgets of the event socket, without a socket: admission, pacing, reply cap."""

from __future__ import annotations

import asyncio
import json

import pytest
from cronwrap.agent.config import Config
from cronwrap.agent.sources.wrapper_socket import PeerLimits
from cronwrap.agent.status_work import CappedReply
from cronwrap.wrapper.events import MAX_STATUS_REPLY_BYTES


def test_connections_are_capped_per_user_and_in_total_but_never_for_root() -> None:
    peers = PeerLimits(Config(max_connections=3, max_connections_per_uid=2))
    for _ in range(2):
        assert peers.refusal(1000) is None
        peers.opened(1000)
    assert "per-user limit" in (peers.refusal(1000) or "")
    peers.opened(1001)
    assert "all non-root users" in (peers.refusal(1002) or "")
    for _ in range(100):
        assert peers.refusal(0) is None
        peers.opened(0)
    peers.closed(1000)
    assert peers.refusal(1002) is None


def test_status_replies_are_paced_per_user_in_bytes_per_second(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slept: list[float] = []
    peers = PeerLimits(Config(status_bytes_per_second=1000), clock=lambda: now[0])

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def scenario() -> None:
        await peers.pace(1000, 500)   # the first reply goes at once
        await peers.pace(1000, 500)   # the next waits for the first's 0.5 s
        await peers.pace(1001, 500)   # another user is not delayed by the first
        await peers.pace(0, 10**9)    # root is never paced
        now[0] += 5.0
        await peers.pace(1000, 500)   # idle long enough: at once again

    monkeypatch.setattr(asyncio, "sleep", sleep)

    asyncio.run(scenario())
    assert slept == [0.5]


def capped(jobs: list[dict[str, object]]) -> bytes:
    reply = CappedReply()
    for job in jobs:
        if not reply.add(job):
            return reply.encode(truncated=len(jobs) - reply.kept)
    return reply.encode()


def test_a_status_reply_over_the_cap_leaves_jobs_out_and_says_how_many() -> None:
    job = {"name": "x", "last_log_path": "/" + "p" * 4000}
    jobs = [dict(job, name=f"job{i}") for i in range(3000)]  # about 12 MB
    reply = capped(jobs)
    assert len(reply) <= MAX_STATUS_REPLY_BYTES
    obj = json.loads(reply)
    assert obj["ok"] and obj["truncated"] == 3000 - len(obj["jobs"]) > 0
    assert obj["jobs"] == jobs[:len(obj["jobs"])]
    small = json.loads(capped(jobs[:3]))
    assert small == {"ok": True, "jobs": jobs[:3]}
