"""Attack tool: hold many connections to the agent's socket, or ask for status and never read.

usage: flood_socket.py hold SOCKET COUNT
           open COUNT connections, ask for status once on each, print
           "admitted A refused R" (A answered, R told the agent is busy or closed), hold them
       flood_socket.py unread SOCKET JOBS COUNT
           report JOBS jobs with 4 KB log paths, then send COUNT status requests on COUNT
           connections and never read a reply; print "sent", hold them
Holds until SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

from cronwrap.wrapper.events import Finished, StatusRequest, new_event_id


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)  # blocking: waits while the listen backlog is full
    sock.settimeout(30)
    return sock


def hold(path: str, count: int) -> list[socket.socket]:
    held = [connect(path) for _ in range(count)]
    answered = refused = 0
    for sock in held:
        try:
            sock.sendall(StatusRequest(jobs=()).to_wire())
            reply = json.loads(sock.makefile("rb").readline() or b'{"ok": false}')
        except OSError:
            reply = {"ok": False}
        answered += bool(reply.get("ok"))
        refused += not reply.get("ok")
    print(f"admitted {answered} refused {refused}", flush=True)
    return held


def unread(path: str, jobs: int, count: int) -> list[socket.socket]:
    log_path = "/" + "x" * 4000
    with connect(path) as sock:
        replies = sock.makefile("rb")
        for index in range(jobs):
            now = time.time()
            sock.sendall(Finished(new_event_id(), f"job{index}", now, os.getpid(),
                                  start_time=now, duration_ms=1, log_path=log_path).to_wire())
            assert json.loads(replies.readline())["ok"]
    held = []
    for _ in range(count):
        sock = connect(path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(StatusRequest(jobs=()).to_wire())
        held.append(sock)
    print("sent", flush=True)
    return held


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    held = hold(path, int(argv[2])) if mode == "hold" else unread(path, int(argv[2]), int(argv[3]))
    signal.sigwait({signal.SIGTERM})
    del held
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    sys.exit(main(sys.argv[1:]))
