"""Benchmark of the AgentX GetNext hot path: decode request -> view.get_next -> encode response.

Run by hand from the repository root:  .venv/bin/python bench/agentx_getnext.py [--json]
Prints ns per varbind at 100 / 1k / 10k entries for: a baseline measured in the same run
(a bare dict lookup plus a bytes join) and the hot path (each varbind encoded when asked: the
entries keep no encoded bytes since issue 18), then a cProfile of the hot path at 10k entries.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import random
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from pysnmp.proto import rfc1902

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from agentx_views import SortedView  # noqa: E402
from cronwrap.agent import agentx_codec as ax  # noqa: E402
from cronwrap.agent.agentx_session import RequestHandler  # noqa: E402

ROOT = (1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 71)
RANGES_PER_REQUEST = 10  # snmpd sends one range per PDU; several show the per-varbind cost


def make_view(size: int) -> SortedView:
    items = []
    for row in range(size // 4):
        index = (0, 6, *b"job", *str(row).zfill(3).encode())
        items.append((ROOT + (1, 5, 1, 2, *index), rfc1902.OctetString(f"job{row}".encode())))
        items.append((ROOT + (1, 5, 1, 3, *index), rfc1902.Counter32(row * 7)))
        items.append((ROOT + (1, 5, 1, 4, *index), rfc1902.Integer32(row % 8)))
        items.append((ROOT + (1, 5, 1, 5, *index), rfc1902.Gauge32(row)))
    return SortedView(items)


def requests(view: SortedView, count: int) -> list[bytes]:
    rng = random.Random(7)
    wires = []
    for packet in range(count):
        starts = rng.sample(view.oids, RANGES_PER_REQUEST)
        pdu = ax.GetNext(session_id=1, transaction_id=packet, packet_id=packet,
                         network_order=False,
                         ranges=tuple(ax.SearchRange(s, ROOT[:-1] + (72,)) for s in starts))
        wires.append(ax.encode(pdu))
    return wires


def per_varbind_ns(run: Callable[[], object], varbinds: int, repeat: int = 15) -> float:
    best = min(timeit.repeat(run, number=1, repeat=repeat))
    return best / varbinds * 1e9


def measure(size: int) -> dict[str, float]:
    view = make_view(size)
    wires = requests(view, 500)
    varbinds = len(wires) * RANGES_PER_REQUEST
    handler = RequestHandler(view, lambda: 0)
    encoded = {oid: ax.encode_varbind(oid, e.value, False) for oid, e in view.entries.items()}
    keys = [view.oids[i % len(view.oids)] for i in range(varbinds)]
    header = bytes(20)

    def baseline() -> None:
        for key in keys:
            b"".join((header, encoded[key]))

    def hot_path() -> None:
        for wire in wires:
            handler.handle(ax.decode(wire))

    return {"baseline": per_varbind_ns(baseline, varbinds),
            "hot_path": per_varbind_ns(hot_path, varbinds)}


def profile(size: int) -> None:
    view = make_view(size)
    wires = requests(view, 2000)
    handler = RequestHandler(view, lambda: 0)
    for wire in wires:
        handler.handle(ax.decode(wire))
    profiler = cProfile.Profile()
    profiler.enable()
    for wire in wires:
        handler.handle(ax.decode(wire))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(10)


def main() -> None:
    if "--json" in sys.argv[1:]:
        print(json.dumps({str(size): {k: round(v, 1) for k, v in measure(size).items()}
                          for size in (100, 1_000, 10_000)}))
        return
    print(f"GetNext, {RANGES_PER_REQUEST} ranges per request; ns per varbind (best of 15)")
    print(f"{'entries':>8} {'baseline':>9} {'hot path':>9} {'ratio':>6}")
    for size in (100, 1_000, 10_000):
        r = measure(size)
        print(f"{size:>8} {r['baseline']:>9.0f} {r['hot_path']:>9.0f} "
              f"{r['hot_path'] / r['baseline']:>6.1f}")
    print("\ncProfile of the hot path at 10,000 entries:")
    profile(10_000)


if __name__ == "__main__":
    main()
