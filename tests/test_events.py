"""The event schema's decoder on hostile and generated input: only EventError, exact round trips."""

from __future__ import annotations

import json

import pytest
from cronwrap.wrapper.events import (
    MAX_MESSAGE_BYTES,
    MAX_PROBLEM_CHARS,
    Cadence,
    Event,
    EventError,
    Finished,
    Overlapped,
    Started,
    StatusRequest,
    decode_message,
)
from cronwrap.wrapper.life_messages import (
    ForgetRequest,
    LifeRequest,
    PauseRequest,
    ResumeRequest,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

event_ids = st.binary(min_size=16, max_size=16).map(bytes.hex)
job_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
times = st.floats(0, 2**33, allow_nan=False)
pids = st.integers(1, 2**22)
seconds = st.none() | st.floats(0, 10 * 365 * 24 * 3600, allow_nan=False)
texts = st.none() | st.text(max_size=60).filter(lambda t: "\x00" not in t)
cadences = st.builds(Cadence, schedule=texts, every=seconds, grace=seconds, timeout=seconds,
                     max_runtime=seconds)
common = {"id": event_ids, "job": job_names, "time": times, "pid": pids, "cadence": cadences}
events: st.SearchStrategy[Event] = st.one_of(
    st.builds(Started, **common),
    st.builds(Finished, start_time=times, exit_status=st.integers(0, 255),
              signal=st.integers(0, 255), duration_ms=st.integers(0, 2**32 - 1),
              timed_out=st.booleans(), log_path=texts, log_problem=texts, **common),
    st.builds(Overlapped, holder_pid=st.none() | pids, **common),
)
owner_uids = st.none() | st.integers(0, 2**32 - 2)
life_requests = st.one_of(
    st.builds(ForgetRequest, job=job_names, owner_uid=owner_uids),
    st.builds(PauseRequest, job=job_names, owner_uid=owner_uids,
              seconds=st.floats(1, 10 * 365 * 24 * 3600, allow_nan=False)),
    st.builds(ResumeRequest, job=job_names, owner_uid=owner_uids),
)
messages = (events | st.builds(StatusRequest, jobs=st.lists(job_names, max_size=5).map(tuple))
            | life_requests)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_refuses(data: bytes) -> None:
    """The decoder's whole contract on untrusted bytes: a message, or EventError."""
    try:
        message = decode_message(data)
    except EventError as exc:
        assert "\n" not in str(exc)
        return
    assert decode_message(message.to_wire()) == message


@FAST
@given(messages)
def test_valid_messages_round_trip_exactly(message: Event | StatusRequest | LifeRequest
                                           ) -> None:
    wire = message.to_wire()
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert decode_message(wire) == message


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_event_errors(data: bytes) -> None:
    decodes_or_refuses(data)


@FAST
@given(messages, st.data())
def test_mutated_messages_raise_only_event_errors(message: Event | StatusRequest | LifeRequest,
                                                 data: st.DataObject) -> None:
    wire = bytearray(message.to_wire())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at:at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    decodes_or_refuses(bytes(wire))


@FAST
@given(st.dictionaries(st.sampled_from(["v", "type", "id", "job", "time", "pid", "cadence",
                                        "start_time", "exit_status", "jobs", "holder_pid",
                                        "owner_uid", "seconds"]),
                       json_values, max_size=8))
def test_arbitrary_json_objects_raise_only_event_errors(obj: dict[str, object]) -> None:
    decodes_or_refuses(json.dumps(obj).encode())


@pytest.mark.parametrize("data", [
    b"[" * (MAX_MESSAGE_BYTES - 1),  # nested too deeply for the JSON parser: RecursionError
    b'{"v":' + b"9" * 5000 + b"}",  # past Python's int-digits limit: a plain ValueError
    b'{"v":1,"type":"status","jobs":' + b"[" * 5000 + b"]" * 5000 + b"}",
], ids=["deep-nesting", "huge-integer", "deep-in-a-field"])
def test_parser_limits_are_event_errors(data: bytes) -> None:
    with pytest.raises(EventError, match="not valid JSON"):
        decode_message(data)


@pytest.mark.parametrize(("data", "problem"), [
    (b'{"v":true,"type":"status"}', "unknown schema version True"),
    (b'{"v":1.0,"type":"status"}', "unknown schema version 1.0"),
    (b'{"v":1,"type":[]}', "unknown message type []"),
    (b'{"v":1,"type":{"a":1}}', "unknown message type"),
], ids=["true-is-not-1", "float-is-not-1", "list-type", "object-type"])
def test_version_and_type_must_have_their_json_types(data: bytes, problem: str) -> None:
    with pytest.raises(EventError) as excinfo:
        decode_message(data)
    assert problem in str(excinfo.value)


def test_log_problem_is_optional_on_the_wire() -> None:
    """Left out while None: an agent from before the field still accepts every ordinary run."""
    plain = Finished("a" * 32, "backup", 1.0, 7, start_time=1.0)
    assert "log_problem" not in json.loads(plain.to_wire())
    troubled = Finished("b" * 32, "backup", 1.0, 7, start_time=1.0,
                        log_problem="cannot write a log under /l: No space left on device")
    assert decode_message(troubled.to_wire()) == troubled
    long = Finished("c" * 32, "backup", 1.0, 7, start_time=1.0,
                    log_problem="x" * (MAX_PROBLEM_CHARS + 1))
    with pytest.raises(EventError, match="'log_problem' must be a string of at most 512"):
        decode_message(long.to_wire())
