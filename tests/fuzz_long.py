"""A long hypothesis run over the AgentX codec and the event decoder; run by hand, not by pytest.

usage: .venv/bin/python tests/fuzz_long.py [--examples N] [--only NAME ...] [--list]
The strategies and checks are the ones the fast tests use (tests/test_agentx_codec.py,
tests/test_events.py), imported, with many more examples and no deadline. Exit status 0 when
every property held; otherwise hypothesis prints the smallest failing example and this exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from cronwrap.agent import agentx_codec as ax  # noqa: E402
from cronwrap.wrapper.events import decode_message  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_agentx_codec import assert_reencodes, normalised, pdus  # noqa: E402
from test_events import decodes_or_refuses, json_values, messages  # noqa: E402

DEFAULT_EXAMPLES = 200_000


def codec_random_bytes(junk: bytes) -> None:
    try:
        decoded = ax.AgentXBuffer(max_payload=4096).feed(junk)
    except ax.AgentXError:
        return
    assert_reencodes(decoded)


def codec_round_trip(pdu: ax.PDU) -> None:
    assert ax.decode(ax.encode(pdu)) == normalised(pdu)


def codec_corrupted(pdu: ax.PDU, data: st.DataObject) -> None:
    wire = bytearray(ax.encode(pdu))
    for _ in range(data.draw(st.integers(1, 6))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = ax.decode(bytes(wire[:data.draw(st.integers(0, len(wire)))]))
    except ax.AgentXError:
        return
    assert_reencodes([decoded])


def codec_framing(batch: list[ax.PDU], data: st.DataObject) -> None:
    stream = b"".join(ax.encode(p) for p in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    buffer = ax.AgentXBuffer()
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received.extend(buffer.feed(stream[start:end]))
    assert received == [normalised(p) for p in batch]


def events_round_trip(message: Any) -> None:
    assert decode_message(message.to_wire()) == message


def events_mutated(message: Any, data: st.DataObject) -> None:
    wire = bytearray(message.to_wire())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at:at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    decodes_or_refuses(bytes(wire))


def events_json_objects(obj: dict[str, Any]) -> None:
    import json

    decodes_or_refuses(json.dumps(obj).encode())


PROPERTIES: dict[str, tuple[Callable[..., None], tuple[st.SearchStrategy[Any], ...]]] = {
    "codec-random-bytes": (codec_random_bytes, (st.binary(max_size=400),)),
    "codec-round-trip": (codec_round_trip, (pdus,)),
    "codec-corrupted": (codec_corrupted, (pdus, st.data())),
    "codec-framing": (codec_framing, (st.lists(pdus, min_size=1, max_size=5), st.data())),
    "events-random-bytes": (decodes_or_refuses, (st.binary(max_size=600),)),
    "events-round-trip": (events_round_trip, (messages,)),
    "events-mutated": (events_mutated, (messages, st.data())),
    "events-json-objects": (events_json_objects,
                            (st.dictionaries(st.text(max_size=12), json_values, max_size=10),)),
}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES,
                   help=f"examples per property (default {DEFAULT_EXAMPLES})")
    p.add_argument("--only", nargs="+", choices=sorted(PROPERTIES), help="run only these")
    p.add_argument("--list", action="store_true", help="list the properties and exit")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(PROPERTIES))
        return 0
    failed = []
    for name in args.only or PROPERTIES:
        body, strategies = PROPERTIES[name]
        check = settings(max_examples=args.examples, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))(given(*strategies)(body))
        began = time.monotonic()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - report every property, then fail
            failed.append(name)
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"{name}: {args.examples} examples held in {time.monotonic() - began:.0f}s",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
