"""The per-owner log limiter: classes per owner, a budget of lines per owner, a table no owner
can fill for the others, details made printable."""

from __future__ import annotations

import logging

import pytest
from cronwrap.agent.ratelimit import MAX_CAUSES_PER_OWNER, OwnerLines, RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_cause_is_logged_once_a_minute_per_owner_then_with_a_count(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    owner_lines = OwnerLines(10, clock)
    log = RateLimitedLog("rejected event", clock=clock, lines=owner_lines)
    with caplog.at_level(logging.WARNING):
        for index in range(3000):
            log.warning("cadence refused", f"uid 1001: zone Bogus/Zone{index}", 1001)
        log.warning("cadence refused", "uid 1002: zone Bogus/Other", 1002)  # another owner
        clock.now += 61
        log.warning("cadence refused", "uid 1001: zone Bogus/Last", 1001)
    assert lines(caplog) == [
        "rejected event: cadence refused: uid 1001: zone Bogus/Zone0",
        "rejected event: cadence refused: uid 1002: zone Bogus/Other",
        "rejected event: cadence refused: uid 1001: zone Bogus/Last (2999 more since last "
        "logged)"]
    assert owner_lines.left_out == 2999


def test_an_owners_budget_caps_its_lines_whatever_the_causes(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    owner_lines = OwnerLines(3, clock)
    log = RateLimitedLog("spool", clock=clock, lines=owner_lines)
    with caplog.at_level(logging.WARNING):
        for index in range(10):
            log.warning(f"class {index}", "detail", 1001)
        log.warning("class 0", "the agent's own, not charged", None)
        clock.now += 60
        log.warning("class 9", "again", 1001)
    assert lines(caplog) == [
        "spool: class 0: detail", "spool: class 1: detail", "spool: class 2: detail",
        "spool: class 0: the agent's own, not charged",
        "spool: class 9: again (1 more since last logged) (7 more lines of uid 1001 left out)"]


def test_one_owner_cannot_fill_the_table_of_causes_for_the_others(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog("x", clock=clock, max_causes=20, lines=OwnerLines(1000, clock))
    with caplog.at_level(logging.WARNING):
        for index in range(100):
            log.warning(f"class {index}", "d", 1001)
        log.warning("victim's class", "d", 1002)
    attacker = [line for line in lines(caplog) if "victim" not in line]
    assert len(attacker) == MAX_CAUSES_PER_OWNER + 1  # its own classes, then one "other causes"
    assert attacker[-1] == "x: other causes: class 16: d"
    assert lines(caplog)[-1] == "x: victim's class: d"


def test_a_detail_is_made_printable_and_cut(clock: Clock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog("x", clock=clock, lines=OwnerLines(10, clock))
    with caplog.at_level(logging.WARNING):
        log.warning("malformed message", "uid 1001: \x1b[2J\nroot/backup: fine" + "y" * 2000,
                    1001)
    (line,) = lines(caplog)
    assert line.startswith("x: malformed message: uid 1001: \\x1b[2J\\nroot/backup: fine")
    assert line.isascii() and line.isprintable() and line.endswith("[...]")
    assert len(line) <= len("x: ") + 1000
