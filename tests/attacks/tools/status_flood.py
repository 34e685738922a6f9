"""Ask the agent for status in a loop, as myself, and print a line after each reply.

usage: status_flood.py SOCKET COUNT [JOB]

Without JOB each request lists all my jobs; with JOB it asks for that job only (one that need
not exist). One connection, COUNT requests one after another; prints `reply N` after each.
"""

from __future__ import annotations

import json
import socket
import sys

from cronwrap.wrapper.events import StatusRequest


def main(path: str, count: str, *job: str) -> int:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        replies = sock.makefile("rb")
        for number in range(1, int(count) + 1):
            sock.sendall(StatusRequest(jobs=tuple(job)).to_wire())
            assert json.loads(replies.readline())["ok"]
            print(f"reply {number}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
