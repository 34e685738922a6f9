"""Transitions of the cron daemon itself: an outage begins when cron is seen not running, is
reported once (cronDaemonNotRunning) when it has lasted cron_down_after or has made a job miss
a start, holds the misses it causes, and ends with cronDaemonRunning when cron runs again."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..lifeevents import CronDaemonSeen
from ..model import CronDaemon, CronDaemonState, NotificationKind
from .outcome import Context


@dataclass(frozen=True)
class DaemonOutcome:
    """What the agent knows of the daemon after an event, and the notifications it raises."""

    daemon: CronDaemon
    raised: tuple[NotificationKind, ...] = ()


def in_outage(daemon: CronDaemon) -> bool:
    """Whether an outage began and has not ended."""
    return daemon.down_since is not None and daemon.up_again is None


def daemon_seen(daemon: CronDaemon, event: CronDaemonSeen, ctx: Context) -> DaemonOutcome:
    """cron looked at: an outage begins, goes on (reported once it lasted cron_down_after) or
    ends; `unknown` (the agent cannot tell) changes no outage."""
    since = _since(daemon, event)
    if event.state == CronDaemonState.running:
        if not in_outage(daemon):
            return DaemonOutcome(replace(daemon, state=event.state, since=since))
        back = replace(daemon, state=event.state, since=since, up_again=since)
        return DaemonOutcome(back, (NotificationKind.cron_running,) if daemon.reported else ())
    if not event.state.down:
        return DaemonOutcome(replace(daemon, state=event.state, since=since))
    if not in_outage(daemon):
        daemon = replace(daemon, down_since=since, up_again=None, reported=False, misses=0)
    daemon = replace(daemon, state=event.state, since=since)
    assert daemon.down_since is not None
    if not daemon.reported and event.now - daemon.down_since >= ctx.config.cron_down_after:
        return _report(daemon)
    return DaemonOutcome(daemon)


def misses_held(daemon: CronDaemon, misses: int) -> DaemonOutcome:
    """A job missed `misses` expected starts that fell in the outage: counted with it, no
    cronJobMissed; the outage is reported now if it was not (the miss is the alarm's cause)."""
    daemon = replace(daemon, misses=daemon.misses + misses)
    return DaemonOutcome(daemon) if daemon.reported else _report(daemon)


def _report(daemon: CronDaemon) -> DaemonOutcome:
    reported = replace(daemon, reported=True, outages=daemon.outages + 1)
    return DaemonOutcome(reported, (NotificationKind.cron_not_running,))


def _since(daemon: CronDaemon, event: CronDaemonSeen) -> float:
    """When the daemon entered the state seen: kept while it stays in it; else systemd's time
    of the change, never in the future nor before the agent last saw cron in another state."""
    if event.state == daemon.state and daemon.since is not None:
        return daemon.since
    if event.since is None:
        return event.now
    return min(max(event.since, daemon.since or event.since), event.now)
