"""A rare schedule costs the agent a few croniter look-ups, not one per span it searches.

A leap day on a Sunday (`7 3 29 2 */7`: cron ANDs the day fields when one starts with `*`)
comes every 28 years; the search for it steps through a span per offset change or 400 days,
and asked croniter again at every step: about 50 look-ups a start, 15-27 ms of CPU for one
job's next start and period (clock.grace_for), so a user's events for a thousand such jobs, or
their crontab lines, held the agent's single writer for seconds at a time. The first match
after a later floor below the match already found is that match: croniter is asked again only
when the floor passes it.
"""

from __future__ import annotations

import time

import pytest
from cronwrap.agent import cronclock

LEAP_SUNDAY = "7 3 29 2 */7"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_a_leap_sunday_costs_a_few_croniter_look_ups(zone: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []
    real = cronclock._first_after

    def counted(expr: str, naive: float) -> float | None:
        asked.append(naive)
        return real(expr, naive)

    monkeypatch.setattr(cronclock, "_first_after", counted)
    spec, named = cronclock.CronSpec(LEAP_SUNDAY), cronclock.zone_named(zone)
    after = time.mktime((2026, 12, 7, 12, 0, 0, 0, 0, 0))
    first = cronclock.next_start(spec, after, named, cron_rules=True)
    second = cronclock.next_start(spec, first or after, named, cron_rules=True)
    assert first is not None and time.gmtime(first)[:3] == (2032, 2, 29)
    assert second is None or time.gmtime(second)[:3] == (2060, 2, 29)
    assert len(asked) <= 6, f"croniter asked {len(asked)} times for two starts"
