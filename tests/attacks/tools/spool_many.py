"""Spool many finished runs of one job as myself, in the wrapper's file format, without fsync.

usage: spool_many.py SPOOL_ROOT JOB COUNT

The first event goes through the wrapper's own Spool (which makes ROOT/<my uid>, or a fallback
directory when that one is squatted); the other COUNT - 1 are written into the same directory
as the wrapper writes them (a hidden temporary name, then a rename to <event id>.json), only
without the two fsyncs per event that would make 50,000 events take minutes. Run i started at
a fixed time plus i seconds, so the runs are distinct and their order is known. Prints COUNT.
"""

from __future__ import annotations

import os
import sys

from cronwrap.wrapper.events import Finished, new_event_id
from cronwrap.wrapper.spool import Spool

FIRST_START = 1_700_000_000.0


def finished(job: str, number: int) -> Finished:
    start = FIRST_START + number
    return Finished(new_event_id(), job, start + 0.5, os.getpid(), start_time=start,
                    duration_ms=500)


def main(root: str, job: str, count: str) -> int:
    spool = Spool(root, os.getuid())
    first = finished(job, 0)
    spool.write(first.id, first.to_wire())
    directory = os.path.join(root, spool.dir_name)
    for number in range(1, int(count)):
        event = finished(job, number)
        temp = os.path.join(directory, f".{event.id}.tmp")
        with open(temp, "wb") as out:
            out.write(event.to_wire())
        os.rename(temp, os.path.join(directory, f"{event.id}.json"))
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
