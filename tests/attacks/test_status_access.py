"""Who reads whose job status: owners their own; root and the status group every job; a
monitoring check that sees nothing says UNKNOWN, never OK (issue 11 item 4).

The setting: NRPE runs `cronwrap status --nagios` as the unprivileged `nagios` user while root's
jobs fail. The agent (root) decides from the kernel's record of the peer (SO_PEERCRED uid and
gid, SO_PEERGROUPS supplementary groups), never from the request. Here the status group is
cwattack3's own group; other test users get it as a supplementary group through setpriv.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent, cronwrap_command, request
from cronwrap.wrapper.events import Finished, new_event_id

from .support import User, cronwrap_as, owned_dir, start_root_agent, user_environment

pytestmark = pytest.mark.integration


def root_failure(agent: Agent, job: str = "backup") -> None:
    start = time.time()
    request(agent.socket, Finished(new_event_id(), job, start, 4242, start_time=start,
                                   exit_status=1, duration_ms=1000).to_wire())


def user_job(agent: Agent, user: User, job: str) -> None:
    """A successful run of `user`'s job, reported by `user` itself through the real wrapper."""
    work = owned_dir(agent.base / f"work-{user.name}", user)
    done = cronwrap_as(user, agent, "--log-dir", str(work / "log"), "--lock-dir",
                       str(work / "lock"), "-n", job, "--", "true")
    assert (done.returncode, done.stderr) == (0, "")


def status_as(user: User, agent: Agent, *args: str, groups: tuple[int, ...] | None = None,
              gid: int | None = None) -> subprocess.CompletedProcess[str]:
    """`cronwrap status ARGS` as `user`: its own groups, or exactly `groups` (supplementary)."""
    command = cronwrap_command()
    assert command is not None
    group_option = "--init-groups" if groups is None else "--groups=" + ",".join(map(str, groups))
    argv = ["setpriv", f"--reuid={user.uid}", f"--regid={gid if gid is not None else user.gid}",
            group_option, "--", command, "status", *args]
    return subprocess.run(argv, env=user_environment(user, {"CRONWRAP_SOCKET": str(agent.socket)}),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def monitored_agent(attackers: tuple[User, ...], shared_base: Path) -> Iterator[Agent]:
    """A root agent whose status group is cwattack3's group; root's `backup` has failed."""
    config = shared_base / "agent.toml"
    config.write_text(f'[agent]\n# the monitoring group\nstatus_group = "{attackers[2].name}"\n')
    agent = start_root_agent(shared_base / "agent", "--config", str(config))
    root_failure(agent)
    yield agent
    agent.close()


def test_without_a_status_group_a_user_sees_only_their_own_jobs_and_nagios_says_unknown(
        attackers: tuple[User, ...], root_agent: Agent) -> None:
    root_failure(root_agent)
    nagios = attackers[0]
    check = status_as(nagios, root_agent, "--nagios")
    assert check.returncode == 3, check.stdout  # the old check said "OK - 0 jobs fine", exit 0
    assert check.stdout.startswith(f"CRONWRAP UNKNOWN - no jobs visible to {nagios.name}")
    named = status_as(nagios, root_agent, "--nagios", "root/backup")
    assert named.returncode == 3 and "unknown job root/backup" in named.stdout
    bare = status_as(nagios, root_agent, "--nagios", "backup")
    assert bare.returncode == 3 and "unknown job backup" in bare.stdout
    table = status_as(nagios, root_agent, "--json")
    assert (table.returncode, table.stdout.strip()) == (0, "[]")


def test_a_member_of_the_status_group_reads_every_job(attackers: tuple[User, ...],
                                                      monitored_agent: Agent) -> None:
    member_by_primary, member_by_supplementary = attackers[2], attackers[0]
    group = attackers[2].gid
    user_job(monitored_agent, attackers[1], "report")
    for user, groups in ((member_by_primary, None), (member_by_supplementary, (group,))):
        check = status_as(user, monitored_agent, "--nagios", groups=groups)
        assert check.returncode == 2, check.stdout
        assert check.stdout.startswith("CRONWRAP CRITICAL - 1 of 2 jobs need attention: "
                                       "root/backup failed | jobs=2;;;0 ok=1;;;0 failed=1;;;0")
        named = status_as(user, monitored_agent, "--nagios", "root/backup", groups=groups)
        assert named.returncode == 2 and "'root/backup duration'=1.000s;;;0" in named.stdout
        every = status_as(user, monitored_agent, "--json", groups=groups)
        owners = {(job["owner"], job["name"]) for job in json.loads(every.stdout)}
        assert owners == {("root", "backup"), (attackers[1].name, "report")}


def test_a_user_outside_the_status_group_still_sees_only_their_own(
        attackers: tuple[User, ...], monitored_agent: Agent) -> None:
    outsider = attackers[1]
    user_job(monitored_agent, outsider, "report")
    check = status_as(outsider, monitored_agent, "--nagios")
    assert check.returncode == 0 and check.stdout.startswith("CRONWRAP OK - 1 jobs fine")
    named = status_as(outsider, monitored_agent, "--nagios", "root/backup")
    assert named.returncode == 3


def test_the_group_is_read_only(attackers: tuple[User, ...], monitored_agent: Agent) -> None:
    """A member reporting `backup` gets a row of its own; root's row is not touched."""
    member = attackers[2]
    before = monitored_agent.status()["root/backup"]
    user_job(monitored_agent, member, "backup")
    rows = monitored_agent.status()
    assert rows["root/backup"] == before
    assert rows[f"{member.name}/backup"]["owner_uid"] == member.uid


def test_a_member_with_hundreds_of_groups_is_recognised(attackers: tuple[User, ...],
                                                        monitored_agent: Agent) -> None:
    """Past 256 groups SO_PEERGROUPS needs a bigger buffer than Python's getsockopt() takes."""
    many = (*range(70000, 70300), attackers[2].gid)
    check = status_as(attackers[0], monitored_agent, "--nagios", "root/backup", groups=many)
    assert check.returncode == 2 and "root/backup failed" in check.stdout
