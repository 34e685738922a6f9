"""Spool wire lines as myself as retries (`r-<id>.json`), as a wrapper whose reply was lost does.

usage: spool_retries.py SPOOL_ROOT < LINES

Prints how many.
"""

from __future__ import annotations

import json
import os
import sys

from cronwrap.wrapper.spool import Spool


def main(root: str) -> int:
    spool, count = Spool(root, os.getuid()), 0
    for line in sys.stdin.buffer:
        spool.write(json.loads(line)["id"], line, retry=True)
        count += 1
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
