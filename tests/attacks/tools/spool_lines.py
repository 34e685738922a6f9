"""Spool wire lines as myself, exactly as the wrapper does when the agent is unreachable.

usage: spool_lines.py SPOOL_ROOT < LINES

Each event line read from stdin is written with the wrapper's own spool_event to
SPOOL_ROOT/<my uid>/<event id>.json. Prints how many.
"""

from __future__ import annotations

import json
import os
import sys

from cronwrap.wrapper.spool import spool_event


def main(root: str) -> int:
    count = 0
    for line in sys.stdin.buffer:
        spool_event(root, os.getuid(), json.loads(line)["id"], line)
        count += 1
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
