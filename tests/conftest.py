"""Fixtures shared by several test modules (`agent`, a running cronwrap-agent), and the `host`
mark on every test of the booted-host suite, so README's quick command can leave it out."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("agent_support",)
HOST_SUITE = Path(__file__).resolve().parent / "host"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HOST_SUITE in item.path.parents:
            item.add_marker(pytest.mark.host)
