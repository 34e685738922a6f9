"""Report runs exactly as the wrapper does: to the agent's socket, else (busy, down) the spool.

usage: report_runs.py SOCKET SPOOL_ROOT JOB RUNS

Each run is a started and a finished event sent through the wrapper's own Reporter (one per
run, as each cron run has its own). Prints the number of runs reported.
"""

from __future__ import annotations

import os
import sys
import time

from cronwrap.wrapper.client import Reporter
from cronwrap.wrapper.events import Finished, Started, new_event_id


def main(socket_path: str, spool_root: str, job: str, runs: str) -> int:
    for _ in range(int(runs)):
        reporter = Reporter(socket_path, spool_root, os.getuid())
        start = time.time()
        reporter.report(Started(new_event_id(), job, start, os.getpid()))
        reporter.report(Finished(new_event_id(), job, start + 0.001, os.getpid(),
                                 start_time=start, duration_ms=1))
    print(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
