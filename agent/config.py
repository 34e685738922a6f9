"""The agent's settings: defaults, the commented TOML file, and command-line overrides."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_FILE = Path("/etc/cronwrap/agent.toml")
FRONT_END_TABLES = {"snmp"}  # passed through to the standalone front end, checked there


class ConfigError(ValueError):
    """The configuration file is unreadable or holds a bad value; str() is one line."""


@dataclass(frozen=True)
class Config:
    """Everything the core needs; the front ends' [snmp] table rides along raw in `sections`."""

    event_socket: str = "/run/cronwrap/agent.sock"
    state_dir: str = "/var/lib/cronwrap"
    spool_dir: str = "/var/spool/cronwrap"
    crontab_root: str = "/"
    max_jobs_per_owner: int = 1000
    max_connections: int = 512  # of all non-root users together; root's are not capped
    max_connections_per_uid: int = 32
    status_bytes_per_second: int = 2 * 1024 * 1024  # per non-root user
    status_rows_per_second: int = 10000  # rows a non-root user's status requests may examine
    read_timeout: float = 10.0
    spool_interval: float = 10.0
    spool_events_per_second: int = 500  # per owner: the drain defers the rest to later passes
    watch_interval: float = 5.0
    discovery_interval: float = 60.0
    crontab_lines_per_minute: int = 2000  # of changed crontabs, per non-root user; the rest wait
    min_every: float = 60.0  # events declaring a shorter --every are refused
    notifications_per_owner: int = 60  # a minute, per job owner; the rest are suppressed
    events_per_second_per_owner: int = 200  # socket events per non-root user (burst: 10 s' worth)
    log_lines_per_owner: int = 10  # agent log lines a minute a user's doings may cause
    default_grace: float = 300.0
    grace_fraction: float = 0.5
    timeout_slack: float = 10.0
    dead_pid_grace: float = 30.0
    applied_retention: float = 7 * 24 * 3600.0
    event_ids_per_owner: int = 10000  # applied event ids remembered per owner, newest kept
    clock_jump: float = 5.0
    late_notifications_per_job: int = 10
    retire_after_periods: int = 3
    run_history: int = 5  # finished runs kept per job (cronJobRunTable, status --history)
    too_often_starts: int = 10  # this many starts in a quarter of their scheduled time: too often
    duration_window: int = 20  # successful runs' durations kept per job for its learned bounds
    duration_factor: float = 4.0  # learned bounds: this many typical deviations from the median
    duration_min_ratio: float = 2.0  # learned bounds: never closer to the median than this ratio
    duration_min_margin: float = 1.0  # ...nor than this many seconds
    status_group: str = ""  # a group whose members read every job's status ("": none)
    cron_timezone: str = ""  # the zone cron reads crontabs in; "": the agent's own local zone
    crontab_cron_tz: str = "auto"  # CRON_TZ lines in crontabs: "auto" (cronie), "honour", "ignore"
    cron_log: str = "on"  # follow cron's log in the journal ("off": don't)
    cron_log_journal: str = ""  # journal files to read instead of the system journal's
    max_open_runs: int = 10000  # runs of cron's log started and not ended, of all users
    cron_daemon: str = "auto"  # how to watch cron: "auto", "off", a systemd unit, a pid file
    cron_daemon_interval: float = 10.0  # seconds between looks at the cron daemon
    cron_down_after: float = 60.0  # cron not running this long (seconds) is an outage reported
    sections: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **values: Any) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


_NUMBERS = {f.name for f in fields(Config) if f.type in ("int", "float")}
_INTEGERS = {f.name for f in fields(Config) if f.type == "int"}
_TEXTS = {f.name for f in fields(Config) if f.type == "str"}
_UNIT_NAME = re.compile(r"[A-Za-z0-9_:.@\\][A-Za-z0-9_:.@\\-]*\.service")
_GROUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")


def load(path: Path | None) -> Config:
    """Read `path` (None: built-in defaults); the core's keys live in the [agent] table."""
    if path is None:
        return Config()
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    agent = doc.pop("agent", {})
    if not isinstance(agent, dict):
        raise ConfigError(f"{path}: [agent] must be a table")
    unknown = sorted(set(doc) - FRONT_END_TABLES)
    if unknown:
        raise ConfigError(f"{path}: unknown table [{unknown[0]}] (known: [agent], [snmp])")
    return Config(**{k: _check(path, k, v) for k, v in agent.items()}, sections=doc)


CRONTAB_CRON_TZ = ("auto", "honour", "ignore")
CRON_LOG = ("on", "off")
MAX_RUN_HISTORY = 100  # runs kept per job at most: bounds the agent's memory (docs/mib.md)
MAX_TOO_OFTEN_STARTS = 100  # start times remembered per job at most
MAX_DURATION_WINDOW = 100  # successful durations kept per job at most


def _check(path: Path, key: str, value: object) -> Any:
    if key == "status_group":
        if not isinstance(value, str) or not (value == "" or _GROUP_NAME.fullmatch(value)):
            raise ConfigError(f"{path}: [agent] status_group must be a group name or gid")
        return value
    if key == "cron_timezone":
        return _check_zone(path, value)
    if key == "cron_log_journal":  # "": the system's journal
        if not isinstance(value, str):
            raise ConfigError(f"{path}: [agent] cron_log_journal must be a directory name or \"\"")
        return value
    if key == "cron_daemon":
        if not isinstance(value, str) or not (value in ("auto", "off") or value.startswith("/")
                                              or _UNIT_NAME.fullmatch(value)):
            raise ConfigError(f"{path}: [agent] cron_daemon must be \"auto\", \"off\", a "
                              "systemd unit (cron.service) or a pid file's absolute path")
        return value
    if key == "cron_log" and value not in CRON_LOG:
        raise ConfigError(f"{path}: [agent] cron_log must be one of {', '.join(CRON_LOG)}")
    if key == "crontab_cron_tz" and value not in CRONTAB_CRON_TZ:
        raise ConfigError(f"{path}: [agent] crontab_cron_tz must be one of "
                          f"{', '.join(CRONTAB_CRON_TZ)}")
    if key in _TEXTS:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: [agent] {key} must be a non-empty string")
        return value
    if key not in _NUMBERS:
        raise ConfigError(f"{path}: unknown setting [agent] {key}")
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{path}: [agent] {key} must be a non-negative number")
    if key in ("max_jobs_per_owner", "max_connections", "max_connections_per_uid",
               "status_bytes_per_second", "notifications_per_owner", "spool_events_per_second",
               "events_per_second_per_owner", "log_lines_per_owner",
               "status_rows_per_second", "event_ids_per_owner", "crontab_lines_per_minute",
               "max_open_runs"):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{path}: [agent] {key} must be a positive integer")
        return value
    if key == "run_history" and (not isinstance(value, int) or value > MAX_RUN_HISTORY):
        raise ConfigError(f"{path}: [agent] run_history must be an integer from 0 to "
                          f"{MAX_RUN_HISTORY}")
    if key == "too_often_starts" and (not isinstance(value, int) or value == 1
                                      or value > MAX_TOO_OFTEN_STARTS):
        raise ConfigError(f"{path}: [agent] too_often_starts must be 0 (off) or an integer from "
                          f"2 to {MAX_TOO_OFTEN_STARTS}")
    if key == "duration_window" and (not isinstance(value, int) or value > MAX_DURATION_WINDOW):
        raise ConfigError(f"{path}: [agent] duration_window must be 0 (no statistics, no learned "
                          f"bounds) or an integer up to {MAX_DURATION_WINDOW}")
    if key == "duration_min_ratio" and value < 1:
        raise ConfigError(f"{path}: [agent] duration_min_ratio must be at least 1")
    if key in _INTEGERS:
        if not isinstance(value, int):
            raise ConfigError(f"{path}: [agent] {key} must be a non-negative integer")
        return value
    return float(value)


def _check_zone(path: Path, value: object) -> str:
    from .cronclock import UnknownZone, zone_named

    if not isinstance(value, str):
        raise ConfigError(f"{path}: [agent] cron_timezone must be a zone name like Europe/London")
    try:
        zone_named(value)
    except UnknownZone as exc:
        raise ConfigError(f"{path}: [agent] cron_timezone: {exc}") from None
    return value
