"""Benchmark: the AgentX GetNext path in-process, driven the way snmpd drives it during a walk.

Run by hand from the repository root:  .venv/bin/python bench/walk_hotpath.py [--profile]
snmpd turns a manager's GETBULK into one GetNext PDU per repetition, each with one SearchRange
starting at the previous answer.  This replays such a walk of a MibSnapshot holding 100 / 1,000
/ 10,000 jobs through the session's read path (the one-range GetNext fast path, as
_Connection.data_received takes it) and RequestHandler, without sockets, and
prints ns per varbind beside a baseline measured in the same run (a dict lookup plus a bytes
join per varbind); each varbind is derived from its row and encoded when asked (the snapshot
keeps rows, not encoded instances), so the first and later walks cost the same.  The same
PDUs in a shuffled order are GetNexts from random starts (an NMS polling chosen instances: no
walk to continue), each a search of the whole table.  --profile adds a cProfile of one walk at
the largest size.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cronwrap.agent import agentx_codec as ax  # noqa: E402
from cronwrap.agent import mib  # noqa: E402
from cronwrap.agent.agentx_session import RequestHandler  # noqa: E402
from cronwrap.agent.snapshot import MibSnapshot  # noqa: E402
from walk_table import jobs, snapshot_of  # noqa: E402

END = mib.ROOT[:-1] + (mib.ROOT[-1] + 1,)  # the registration's upper bound, as snmpd sends it
NETWORK_ORDER = False  # Net-SNMP 5.9 on little-endian hosts sends host order


def requests(snapshot: MibSnapshot) -> list[bytes]:
    """The GetNext PDUs of one walk of the subtree: each starts at the previous answer."""
    out = []
    start: tuple[int, ...] = mib.ROOT
    while (entry := snapshot.get_next(start, False, END)) is not None:
        out.append(ax.encode(ax.GetNext(
            session_id=1, transaction_id=len(out), packet_id=len(out),
            network_order=NETWORK_ORDER, ranges=(ax.SearchRange(start, END),))))
        start = entry.oid
    return out


def serve(wires: list[bytes], handler: RequestHandler) -> float:
    """Answer every PDU as the session's data_received does (each read holds one GetNext, so
    the one-range fast path answers it; anything else would go through the framing buffer and
    the general handler); returns the CPU seconds taken."""
    buffer = ax.AgentXBuffer()
    began = time.process_time()
    for wire in wires:
        quick = ax.single_get_next(wire)
        if quick is not None:
            handler.get_next_frame(wire, *quick)
        else:
            buffer.receive(wire)
            handler.handle(buffer.next_pdu())  # type: ignore[arg-type]
    return time.process_time() - began


def baseline(snapshot: MibSnapshot) -> float:
    """ns per varbind of a dict lookup and a bytes join: the floor any Python path pays."""
    encoded = {}
    start: tuple[int, ...] = mib.ROOT
    while (entry := snapshot.get_next(start, False, END)) is not None:
        encoded[start] = ax.entry_varbind(entry, NETWORK_ORDER)
        start = entry.oid
    header = bytes(20)
    began = time.process_time()
    for key in encoded:
        b"".join((header, encoded[key]))
    return (time.process_time() - began) / len(encoded) * 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,1000,10000", help="comma-separated job counts")
    p.add_argument("--profile", action="store_true", help="cProfile one walk at the largest size")
    args = p.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print("GetNext walk as snmpd drives it (one range per PDU), "
          "CPU ns per varbind, best of 5 walks")
    print(f"{'jobs':>7}{'varbinds':>10}{'baseline':>10}{'first walk':>12}{'cached':>9}"
          f"{'cached/base':>12}{'random starts':>15}")
    per_size = {}
    random_starts = {}
    for size in sizes:
        snapshot = snapshot_of(jobs(size))
        handler = RequestHandler(snapshot, lambda: 0)
        wires = requests(snapshot)
        varbinds = len(wires)
        first = serve(wires, handler)
        cached = min(serve(wires, handler) for _ in range(5)) / varbinds * 1e9
        base = min(baseline(snapshot) for _ in range(5))
        shuffled = random.Random(size).sample(wires, len(wires))
        random_starts[size] = min(serve(shuffled, handler) for _ in range(5)) / varbinds * 1e9
        per_size[size] = cached
        print(f"{size:>7}{varbinds:>10}{base:>10.0f}{first / varbinds * 1e9:>12.0f}"
              f"{cached:>9.0f}{cached / base:>12.1f}{random_starts[size]:>15.0f}")
    print(f"flatness (cached ns/varbind at {sizes[-1]} / at {sizes[0]} jobs): "
          f"{per_size[sizes[-1]] / per_size[sizes[0]]:.2f}; random starts: "
          f"{random_starts[sizes[-1]] / random_starts[sizes[0]]:.2f}")
    if args.profile:
        snapshot = snapshot_of(jobs(sizes[-1]))
        handler = RequestHandler(snapshot, lambda: 0)
        wires = requests(snapshot)
        serve(wires, handler)
        profiler = cProfile.Profile()
        profiler.enable()
        serve(wires, handler)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
