"""Attack tool: report runs to the agent as the calling user, and print each reply.

usage: send_events.py SOCKET fail PREFIX COUNT      one failed run each of PREFIX0..PREFIX<COUNT-1>
       send_events.py SOCKET every NAME SECONDS     one start declaring --every SECONDS
Prints one JSON line: {"ok": N, "errors": [distinct error texts]}.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from cronwrap.wrapper.events import Cadence, Event, Finished, Started, new_event_id


def events(argv: list[str]) -> list[Event]:
    now = time.time()
    if argv[0] == "fail":
        prefix, count = argv[1], int(argv[2])
        return [Finished(new_event_id(), f"{prefix}{index}", now, os.getpid(), start_time=now,
                         exit_status=1, duration_ms=1) for index in range(count)]
    name, every = argv[1], float(argv[2])
    return [Started(new_event_id(), name, now, os.getpid(), cadence=Cadence(every=every))]


def main(argv: list[str]) -> int:
    ok, errors = 0, set()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(argv[0])
        replies = sock.makefile("rb")
        for event in events(argv[1:]):
            sock.sendall(event.to_wire())
            reply = json.loads(replies.readline())
            ok += reply["ok"]
            if not reply["ok"]:
                errors.add(reply["error"])
    print(json.dumps({"ok": ok, "errors": sorted(errors)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
