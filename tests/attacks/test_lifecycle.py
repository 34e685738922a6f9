"""Nobody forgets, pauses or resumes another user's job: `cronwrap forget/pause/resume` and
hand-made requests, as real unprivileged users (setpriv) against a real root agent.

The agent takes the asker's uid from the kernel (SO_PEERCRED); `owner_uid` in a request names
whose job is meant, and only root may name someone else. A refusal reads the same whether the
other user's job exists or not, and changes nothing.
"""

from __future__ import annotations

import time

import pytest
from agent_support import Agent, request
from cronwrap.wrapper.events import Finished, StatusRequest, new_event_id
from cronwrap.wrapper.life_messages import ForgetRequest, PauseRequest, ResumeRequest

from .support import User, cronwrap_as, owned_dir, send_as

pytestmark = pytest.mark.integration


def root_failure(agent: Agent, job: str) -> None:
    start = time.time()
    reply = request(agent.socket, Finished(new_event_id(), job, start, 4242, start_time=start,
                                           exit_status=1, duration_ms=1000).to_wire())
    assert reply["ok"], reply


def user_job(agent: Agent, user: User, job: str) -> None:
    """A successful run of `user`'s job, reported by `user` itself through the real wrapper."""
    work = owned_dir(agent.base / f"work-{user.name}", user)
    done = cronwrap_as(user, agent, "--log-dir", str(work / "log"), "--lock-dir",
                       str(work / "lock"), "-n", job, "--", "true")
    assert (done.returncode, done.stderr) == (0, "")


def everything(agent: Agent) -> dict[str, dict[str, object]]:
    """Every job as root sees it: OWNER/NAME -> the status JSON."""
    reply = request(agent.socket, StatusRequest().to_wire())
    return {f"{job['owner']}/{job['name']}": job for job in reply["jobs"]}


def test_a_user_cannot_change_another_users_job(attackers: tuple[User, User, User],
                                                root_agent: Agent) -> None:
    alice, mallory, _ = attackers
    root_failure(root_agent, "backup")
    user_job(root_agent, alice, "report")
    user_job(root_agent, mallory, "report")  # the same name, mallory's own job
    before = everything(root_agent)

    attempts = [
        ("forget", "backup", "--user", "root"),
        ("forget", "backup", "--user", "0"),
        ("pause", "backup", "--for", "1h", "--user", "root"),
        ("resume", "backup", "--user", "root"),
        ("forget", "report", "--user", alice.name),
        ("pause", "report", "--for", "10d", "--user", str(alice.uid)),
        ("forget", "no-such-job", "--user", "root"),  # answered like a job that exists
    ]
    for attempt in attempts:
        done = cronwrap_as(mallory, root_agent, *attempt)
        assert done.returncode == 77, (attempt, done.stderr)
        assert done.stderr == (
            f"cronwrap {attempt[0]}: permission denied: {mallory.name} (uid {mallory.uid}) "
            f"may {attempt[0]} only its own jobs; other users' jobs need root\n")
        assert done.stdout == ""

    # the same requests made by hand, and from a user whose jobs these are not either
    raw = [ForgetRequest("backup", 0), PauseRequest("backup", 0, 3600.0),
           ResumeRequest("report", alice.uid), ForgetRequest("report", alice.uid)]
    for reply in send_as(mallory, root_agent, *raw):  # type: ignore[arg-type]
        assert (reply["ok"], reply["reason"]) == (False, "denied")

    assert everything(root_agent) == before  # nothing changed, nothing paused or forgotten
    assert f"refused request: resume: uid {mallory.uid} ({mallory.name}) asked" in \
        root_agent.log.read_text()

    # what is one's own may be changed: mallory's report, not alice's of the same name
    assert cronwrap_as(mallory, root_agent, "pause", "report", "--for", "1h").returncode == 0
    jobs = everything(root_agent)
    assert jobs[f"{mallory.name}/report"]["state"] == "paused"
    assert jobs[f"{alice.name}/report"]["state"] == "ok"
    done = cronwrap_as(mallory, root_agent, "forget", "report", "--user", mallory.name)
    assert done.returncode == 0, done.stderr
    jobs = everything(root_agent)
    assert f"{mallory.name}/report" not in jobs and f"{alice.name}/report" in jobs
