"""The NMS suite's agent: one real cronwrap-agent whose jobs, run through the real wrapper,
failed, succeeded and are missed, shared by the tests of every NMS server (marker `nms`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_support import cronwrap_command, wait_for
from e2e_support import Rig, rig

GOOD_RUNS, BAD_RUNS, BAD_EXIT = 3, 2, 3
# The missed job declares a start every second, below the agent's usual 60 s floor, and stays
# missed (not retired after 3 periods); the group nagios reads every job's status, as
# docs/nms/icinga-nagios.md has NRPE's user do.
AGENT_CONFIG = """[agent]
min_every = 1.0
retire_after_periods = 0
status_group = "nagios"
"""


@dataclass(frozen=True)
class CronJobs:
    """The agent and its jobs: root/good succeeded, root/bad failed, root/late is missed."""

    rig: Rig

    @property
    def host(self) -> str:
        return self.rig.listener.split(":")[0]

    @property
    def port(self) -> int:
        return int(self.rig.listener.split(":")[1])

    def status(self) -> dict[str, dict]:
        return self.rig.agent.status()


def _missed(jobs: CronJobs) -> bool:
    late = jobs.status().get("root/late")
    return late is not None and late["misses"] >= 1


@pytest.fixture(scope="session")
def cron_jobs() -> Iterator[CronJobs]:
    """A standalone agent on a loopback port with three jobs run by the real wrapper.

    Its directory is one the NMS daemons' users (nagios) can reach: its socket for NRPE's
    `cronwrap status`, unlike pytest's private temporary directories."""
    if cronwrap_command() is None:
        pytest.fail("cronwrap is not installed in this environment", pytrace=False)
    base = Path(tempfile.mkdtemp(prefix="cronwrap-nms-"))
    base.chmod(0o755)
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, base)
        yield cleanup.enter_context(jobs_ran(base))


@contextmanager
def jobs_ran(base: Path) -> Iterator[CronJobs]:
    """Start a fresh agent under `base` and run the three jobs through the real wrapper."""
    with rig(base, agentx=False, listen=True, config=AGENT_CONFIG) as running:
        for _ in range(GOOD_RUNS):
            assert running.wrap("-n", "good", "--", "true").returncode == 0
        for _ in range(BAD_RUNS):
            done = running.wrap("-n", "bad", "--", "sh", "-c", f"exit {BAD_EXIT}")
            assert done.returncode == BAD_EXIT, done.stderr
        late = running.wrap("-n", "late", "--every", "1s", "--grace", "1s", "--", "true")
        assert late.returncode == 0, late.stderr
        running.wait_for_runs("good", GOOD_RUNS)
        running.wait_for_runs("bad", BAD_RUNS)
        jobs = CronJobs(running)
        wait_for(lambda: _missed(jobs), "root/late to be missed")
        yield jobs
