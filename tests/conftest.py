"""Fixtures shared by several test modules (`agent`, a running cronwrap-agent), the `host`
mark on every test of the booted-host suite, so README's quick command can leave it out, and
the order and number of parallel workers that keep that command short."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ("agent_support",)
HOST_SUITE = Path(__file__).resolve().parent / "host"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HOST_SUITE in item.path.parents:
            item.add_marker(pytest.mark.host)
    # the slow modules first: started early, they end while the short ones run beside them
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist, whole files are handed out in collection order (slow ones first), not
    the files with the most tests first (`--no-loadscope-reorder`): a parallel run then does
    not end on a long one-test module.  Set here, not in addopts: the host suite runs these
    tests under Debian's python, without xdist."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, when it is installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: three workers a core, since the slow tests mostly wait (on cron's minute, on
    daemons) rather than compute."""
    return 3 * len(os.sched_getaffinity(0))
