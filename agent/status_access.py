"""Who may read whose job status: owners their own jobs; root and the status group every job.

The peer's uid, primary gid and supplementary groups come from the kernel (SO_PEERCRED and
SO_PEERGROUPS, both captured when the peer connected), never from the message.  SO_PEERGROUPS
needs Linux 4.13 or later; on an older kernel only the peer's primary group counts, and the
agent says so once in its log.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import socket
import struct
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PEERCRED = struct.Struct("3i")
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux's value, all architectures
GID_BYTES = 4  # gid_t
GROUPS_BUFFER = 1024  # 256 groups: the most Python's getsockopt() can take
NGROUPS_MAX_BUFFER = 65536 * GID_BYTES  # beyond that, through libc (ctypes)
GROUP_TTL = 60.0  # seconds a group lookup is trusted: /etc/group may change under the agent


def peer_gids(sock: socket.socket) -> frozenset[int]:
    """The connected peer's primary and supplementary group ids, as the kernel recorded them."""
    _pid, _uid, gid = PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
    try:
        data = _peer_groups(sock)
    except OSError as exc:
        if exc.errno != errno.ENOPROTOOPT:
            raise
        _warn_no_peergroups()
        return frozenset({gid})
    count = len(data) // GID_BYTES
    return frozenset({gid, *struct.unpack(f"={count}I", data[: count * GID_BYTES])})


def _peer_groups(sock: socket.socket) -> bytes:
    try:
        return sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, GROUPS_BUFFER)
    except OSError as exc:
        if exc.errno != errno.ERANGE:
            raise
    return _peer_groups_libc(sock.fileno())


def _peer_groups_libc(fd: int) -> bytes:
    """SO_PEERGROUPS for a peer in more than 256 groups, with a buffer for NGROUPS_MAX."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(NGROUPS_MAX_BUFFER)
    size = ctypes.c_uint32(NGROUPS_MAX_BUFFER)
    if libc.getsockopt(fd, socket.SOL_SOCKET, SO_PEERGROUPS, buffer, ctypes.byref(size)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return buffer.raw[: size.value]


_warned_no_peergroups = False


def _warn_no_peergroups() -> None:
    global _warned_no_peergroups
    if not _warned_no_peergroups:
        _warned_no_peergroups = True
        log.warning("this kernel has no SO_PEERGROUPS (Linux < 4.13): status_group counts only "
                    "as a status reader's primary group")


class StatusAccess:
    """Decides whether a status reader sees every job (root, members of `group`) or its own."""

    def __init__(self, group: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.group = group
        self._clock = clock
        self._resolved: tuple[float, int | None] | None = None
        self._missing_logged = False

    def group_id(self) -> int | None:
        """The status group's gid (None: none configured, or no such group right now)."""
        if not self.group:
            return None
        now = self._clock()
        if self._resolved is not None and now - self._resolved[0] < GROUP_TTL:
            return self._resolved[1]
        gid = resolve_group(self.group)
        if gid is None and not self._missing_logged:
            log.warning("status_group %r is not a group on this host: only root and each job's "
                        "owner can read its status", self.group)
        self._missing_logged = gid is None
        self._resolved = (now, gid)
        return gid

    def sees_every_job(self, uid: int, sock: socket.socket) -> bool:
        if uid == 0:
            return True
        gid = self.group_id()
        return gid is not None and gid in peer_gids(sock)


def resolve_group(group: str) -> int | None:
    """A group name's gid (a number is taken as a gid), or None if there is no such group."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None
