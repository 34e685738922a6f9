"""Attack: fill the file system holding PATH (e.g. /var/tmp, shared with /var/lib) to the byte.

usage: fill_disk.py PATH

Writes PATH until the file system says ENOSPC, then the last partial blocks too. Prints the
number of bytes written. Removing PATH gives the space back.
"""

from __future__ import annotations

import errno
import os
import sys


def main(path: str) -> int:
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    written += os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
