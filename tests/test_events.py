"""The event schema's decoder on hostile and generated input: only EventError, exact round trips."""

from __future__ import annotations

import json

import pytest
from cronwrap.wrapper.events import (
    CUT_MARK,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_PATH_CHARS,
    MAX_PROBLEM_CHARS,
    Cadence,
    Event,
    EventError,
    Finished,
    Overlapped,
    Started,
    StatusRequest,
    decode_message,
    safe_text,
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
# what the agent keeps as sent: printable ASCII (anything else is escaped, see below)
texts = st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)
usages = st.none() | st.integers(0, 2**32 - 1)
# every field is given a strategy: st.builds fills a NamedTuple's defaulted fields too
cadences = st.builds(Cadence, schedule=texts, every=seconds, grace=seconds, timeout=seconds,
                     max_runtime=seconds,
                     tz=st.none() | st.sampled_from(["Europe/London", "Etc/GMT+5", "UTC"]),
                     min_duration=seconds, max_duration=seconds,
                     duration_baseline=st.none() | st.booleans())
common = {"id": event_ids, "job": job_names, "time": times, "pid": pids, "cadence": cadences}
events: st.SearchStrategy[Event] = st.one_of(
    st.builds(Started, **common),
    st.builds(Finished, start_time=times, exit_status=st.integers(0, 255),
              signal=st.integers(0, 255), duration_ms=st.integers(0, 2**32 - 1),
              timed_out=st.booleans(), log_path=texts, log_problem=texts, last_message=texts,
              cpu_ms=usages, max_rss_kib=usages, **common),
    st.builds(Overlapped, holder_pid=st.none() | pids, lost_wrapper_pid=st.none() | pids,
              **common),
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


@pytest.mark.parametrize(("data", "problem"), [
    # nested too deeply for the JSON parser: RecursionError
    (b"[" * (MAX_MESSAGE_BYTES - 1), "not valid JSON"),
    # past Python's int-digits limit: a plain ValueError
    (b'{"v":' + b"9" * 5000 + b"}", "not valid JSON"),
    # Python 3.11's parser gives up at this depth (RecursionError); 3.13's parses it, and the
    # field's own check refuses it
    (b'{"v":1,"type":"status","jobs":' + b"[" * 5000 + b"]" * 5000 + b"}",
     "not valid JSON|'jobs' must be a list of valid job names"),
], ids=["deep-nesting", "huge-integer", "deep-in-a-field"])
def test_parser_limits_are_event_errors(data: bytes, problem: str) -> None:
    with pytest.raises(EventError, match=problem):
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


def test_resource_use_and_duration_bounds_are_optional_on_the_wire() -> None:
    """Left out while None (an agent from before them still accepts the event); an event
    without them, as older wrappers send, is still accepted; out-of-range values are refused."""
    plain = Finished("a" * 32, "backup", 1.0, 7, start_time=1.0)
    fields = json.loads(plain.to_wire())
    assert not {"cpu_ms", "max_rss_kib"} & set(fields)
    assert not {"min_duration", "max_duration", "duration_baseline"} & set(fields["cadence"])
    measured = Finished("b" * 32, "backup", 1.0, 7, start_time=1.0, cpu_ms=830,
                        max_rss_kib=71_204, cadence=Cadence(min_duration=60.0, max_duration=7200.0,
                                                            duration_baseline=False))
    assert decode_message(measured.to_wire()) == measured
    for name, value in (("cpu_ms", -1), ("max_rss_kib", 2**32), ("cpu_ms", True)):
        wire = json.loads(measured.to_wire())
        wire[name] = value
        with pytest.raises(EventError, match=f"'{name}' must be an integer"):
            decode_message(json.dumps(wire).encode())
    wire = json.loads(measured.to_wire())
    wire["cadence"]["duration_baseline"] = "no"
    with pytest.raises(EventError, match="'duration_baseline' must be true or false"):
        decode_message(json.dumps(wire).encode())


SIZES = {"log_path": MAX_PATH_CHARS, "log_problem": MAX_PROBLEM_CHARS,
         "last_message": MAX_MESSAGE_CHARS}


@FAST
@given(st.text(max_size=300), st.sampled_from(["log_path", "log_problem", "last_message"]))
def test_free_text_comes_out_printable_ascii_and_fits_its_column(text: str, key: str) -> None:
    """Whatever a sender puts in a free-text field, the decoded event holds printable ASCII
    within the field's size, and decoding it again changes nothing."""
    event = Finished("0" * 32, "job", 1.0, 5, **{key: text})  # type: ignore[arg-type]
    wire = event.to_wire()
    try:
        decoded = decode_message(wire)
    except EventError:
        assert len(text) > SIZES[key]  # longer than the field allows: refused as before
        return
    kept = getattr(decoded, key)
    assert kept.isascii() and kept.isprintable() and len(kept) <= SIZES[key], kept
    assert decode_message(decoded.to_wire()) == decoded
    if text.isascii() and text.isprintable():
        assert kept == text


@pytest.mark.parametrize(("text", "kept"), [
    ("ok\x1b]0;owned\x07\nroot/backup\tfine\r", "ok\\x1b]0;owned\\x07\\nroot/backup\\tfine\\r"),
    ("C:\\dir é", "C:\\\\dir \\xe9"),
    ("\ud800 \u2028 \U0001f600", "\\ud800 \\u2028 \\U0001f600"),
    ("a\\b", "a\\b"),  # printable ASCII: as sent
])
def test_the_escaping_rule_of_docs_protocol(text: str, kept: str) -> None:
    assert safe_text(text, 255) == kept


def test_long_text_is_cut_between_escapes_with_a_mark() -> None:
    cut = safe_text("\x1b" * 100, 22)
    assert cut == "\\x1b" * 4 + CUT_MARK and len(cut) <= 22
    assert safe_text("x" * 300, 255) == "x" * 250 + CUT_MARK


def test_a_schedule_with_anything_but_printable_ascii_is_refused() -> None:
    for schedule in ("0 3 * * *\n* * * * *", "0 3 * * *\x1b", "0 3 * * \u00a0*"):
        event = Started("0" * 32, "job", 1.0, 5, Cadence(schedule=schedule))
        with pytest.raises(EventError, match="'schedule' must be printable ASCII"):
            decode_message(event.to_wire())
