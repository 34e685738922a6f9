"""Attack: turn each of my spooled files into a directory the moment the agent has read it.

usage: swap_on_read.py SPOOL_ROOT NAME_TAIL < LINES

Spools each event line read from stdin as SPOOL_ROOT/<my uid>/<n><NAME_TAIL>.json (NAME_TAIL
may hold newlines and control characters: a file name may hold anything but "/" and NUL), with a
hidden directory .d<n> beside it, then watches the directory with inotify: when the agent closes
a file it read, the file and its directory swap names (renameat2 RENAME_EXCHANGE), so the
agent's unlink of that name, after it applied the event, fails (EISDIR). Prints how many swaps
came before the agent's unlink and how many after (the file was gone).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import sys
import time

AT_FDCWD = -100
RENAME_EXCHANGE = 2
IN_CLOSE_NOWRITE = 0x10
IN_CLOEXEC = 0o2000000
EVENT = struct.Struct("iIII")
GIVE_UP = 120.0  # seconds: the agent never read the files (the test fails on the counts)

libc = ctypes.CDLL(None, use_errno=True)


def check(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def main(root: str, tail: str) -> int:
    mine = os.path.join(root, str(os.getuid()))
    if not os.path.isdir(mine):
        os.mkdir(mine, 0o700)
    os.chdir(mine)
    watch = check(libc.inotify_init1(IN_CLOEXEC))
    check(libc.inotify_add_watch(watch, b".", IN_CLOSE_NOWRITE))
    waiting: dict[bytes, bytes] = {}  # a spooled file's name -> its hidden directory's
    for number, line in enumerate(sys.stdin.buffer):
        name = f"{number}{tail}.json".encode(errors="surrogateescape")
        hidden = f".d{number}".encode()
        os.mkdir(hidden, 0o700)
        with open(b".t", "wb") as out:
            out.write(line)
        os.rename(b".t", name)
        waiting[name] = hidden
    swapped = late = 0
    deadline = time.monotonic() + GIVE_UP
    while waiting and time.monotonic() < deadline:
        if not select.select([watch], [], [], 1.0)[0]:
            continue
        data = os.read(watch, 65536)
        offset = 0
        while offset < len(data):
            _wd, _mask, _cookie, length = EVENT.unpack_from(data, offset)
            offset += EVENT.size
            name = data[offset:offset + length].rstrip(b"\0")
            offset += length
            hidden = waiting.pop(name, None)
            if hidden is None:
                continue
            if libc.renameat2(AT_FDCWD, name, AT_FDCWD, hidden, RENAME_EXCHANGE) == 0:
                swapped += 1
            else:
                late += 1  # the agent unlinked it first
    print(swapped, late, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
