"""Make many fallback spool directories of my own, each full of empty retry files.

usage: spool_retry_dirs.py SPOOL_ROOT DIRECTORIES FILES

Each directory is named like a wrapper's fallback (`<my uid>.<16 hex digits>`, mode 0700) and
holds FILES empty files named like spooled retries (`r-<32 hex digits>.json`). Prints the
number of files made.
"""

from __future__ import annotations

import os
import sys

from cronwrap.wrapper.spool import RETRY_PREFIX


def main(root: str, directories: str, files: str) -> int:
    made = 0
    for number in range(int(directories)):
        name = os.path.join(root, f"{os.getuid()}.{number:016x}")
        os.mkdir(name, 0o700)
        dir_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for index in range(int(files)):
                os.close(os.open(f"{RETRY_PREFIX}{index:032x}.json", os.O_WRONLY | os.O_CREAT,
                                 0o600, dir_fd=dir_fd))
                made += 1
        finally:
            os.close(dir_fd)
    print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
