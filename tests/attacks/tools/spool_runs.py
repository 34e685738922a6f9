"""Spool runs exactly as the wrapper does when the agent is unreachable, one every PAUSE seconds.

usage: spool_runs.py SPOOL_ROOT JOB RUNS PAUSE [EXIT_STATUS]

Each run is a started and a finished event written with the wrapper's own spool_event into
SPOOL_ROOT/<my uid>/. Prints the number of runs spooled.
"""

from __future__ import annotations

import os
import sys
import time

from cronwrap.wrapper.events import Finished, Started, new_event_id
from cronwrap.wrapper.spool import spool_event


def main(root: str, job: str, runs: str, pause: str, exit_status: str = "0") -> int:
    for _ in range(int(runs)):
        start = time.time()
        finish = Finished(new_event_id(), job, start, os.getpid(), start_time=start,
                          exit_status=int(exit_status), duration_ms=1)
        for event in (Started(new_event_id(), job, start, os.getpid()), finish):
            spool_event(root, os.getuid(), event.id, event.to_wire())
        time.sleep(float(pause))
    print(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
