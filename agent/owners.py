"""Account names and uids for the agent: cached for a minute, because pwd reads files."""

from __future__ import annotations

import pwd
import time

NAME_TTL = 60.0
_names: dict[int, tuple[float, str]] = {}


def owner_name(uid: int) -> str:
    """The user name for `uid` (decimal uid if none), cached for a minute: pwd reads files."""
    now = time.monotonic()
    cached = _names.get(uid)
    if cached is not None and now - cached[0] < NAME_TTL:
        return cached[1]
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    if len(_names) > 10000:
        _names.clear()
    _names[uid] = (now, name)
    return name


UID_TTL = 60.0
_uids: dict[str, tuple[float, int | None]] = {}


def uid_of(user: str) -> int | None:
    """The uid of the account cron ran a job as (cached for a minute: pwd reads files)."""
    now = time.monotonic()
    cached = _uids.get(user)
    if cached is not None and now - cached[0] < UID_TTL:
        return cached[1]
    try:
        uid: int | None = pwd.getpwnam(user).pw_uid
    except KeyError:
        uid = None
    if len(_uids) > 10000:
        _uids.clear()
    _uids[user] = (now, uid)
    return uid
