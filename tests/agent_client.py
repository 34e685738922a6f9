"""A test client that reports runs like the wrapper: send each event, spool it when not acked.

usage: agent_client.py SOCKET SPOOL_ROOT JOB RUNS [EXIT_STATUS]
Prints one JSON line: {"acked": N, "spooled": M, "uid": UID}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from agent_support import send_or_spool  # noqa: E402
from cronwrap.wrapper.events import Finished, Started, new_event_id  # noqa: E402


def main(argv: list[str]) -> int:
    sock, root, job, runs = Path(argv[0]), Path(argv[1]), argv[2], int(argv[3])
    exit_status = int(argv[4]) if len(argv) > 4 else 0
    outcome = {"acked": 0, "spooled": 0, "uid": os.getuid()}
    for _ in range(runs):
        start = time.time()
        events = [
            Started(new_event_id(), job, start, os.getpid()),
            Finished(new_event_id(), job, time.time(), os.getpid(), start_time=start,
                     exit_status=exit_status, duration_ms=1),
        ]
        for event in events:
            outcome[send_or_spool(sock, root, event)] += 1
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
