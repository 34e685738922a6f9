"""The event and request schema shared by the wrapper and the agent, and its wire framing.

Wire format (see docs/protocol.md): one JSON object per line (UTF-8, terminated by b"\\n"),
at most MAX_MESSAGE_BYTES including the newline.  The client sends one message and reads one
reply line.  Standard library only: the wrapper imports this on every cron run.
"""

import json
import os
import re
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # defined there, loaded only when such a request arrives
    from cronwrap.wrapper.life_messages import LifeRequest

if TYPE_CHECKING:
    pass

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 16 * 1024
JOB_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# an IANA zone name (Europe/London, Etc/GMT+5): words of letters, digits, _ + - joined by "/"
ZONE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_+-]*(?:/[A-Za-z0-9][A-Za-z0-9_+-]*)*"  # compiled on use
MAX_ZONE_CHARS = 64
MAX_PID = 2**22
MAX_DURATION_MS = 2**32 - 1
MAX_USAGE = 2**32 - 1  # a run's CPU milliseconds, its peak RSS in KiB (Unsigned32 columns)
MAX_SECONDS = 10 * 365 * 24 * 3600
MAX_PATH_CHARS = 4096
MAX_SCHEDULE_CHARS = 128
MAX_PROBLEM_CHARS = 512
MAX_MESSAGE_CHARS = 255  # a finished run's last line of output (cronJobLastMessage)
CUT_MARK = "[...]"  # ends free text that safe_text cut to its column's size
SCHEDULE_PATTERN = r"[ -~]*"  # printable ASCII: a schedule is refused with anything else


class EventError(ValueError):
    """A message that does not follow the schema; str() is one line naming the problem."""


def is_valid_job_name(name: object) -> bool:
    return isinstance(name, str) and JOB_NAME_PATTERN.fullmatch(name) is not None


def is_valid_zone_name(name: object) -> bool:
    """The shape of an IANA zone name (whether the zone exists is the zoneinfo database's call)."""
    return (isinstance(name, str) and len(name) <= MAX_ZONE_CHARS
            and re.fullmatch(ZONE_NAME_PATTERN, name) is not None)


def new_event_id() -> str:
    """128 random bits as 32 hex digits (os.urandom: cheaper to import than uuid)."""
    return os.urandom(16).hex()


class Cadence(NamedTuple):
    """How often a job is expected to start, as declared on its cronwrap command line."""

    schedule: str | None = None  # a five-field cron expression
    every: float | None = None  # seconds between starts
    grace: float | None = None  # seconds of lateness tolerated before a miss
    timeout: float | None = None  # the wrapper's --timeout, seconds
    max_runtime: float | None = None  # seconds after which a running job is overrunning
    tz: str | None = None  # the IANA zone `schedule` is in (--tz, CRON_TZ); None: cron's own
    min_duration: float | None = None  # seconds: a successful run shorter is an anomaly
    max_duration: float | None = None  # seconds: a successful run longer is an anomaly
    duration_baseline: bool | None = None  # False: no learned bounds (--no-duration-baseline)

    # added after the first agents: left out of the wire while None (see event_wire)
    OMITTED_WHEN_NONE = ("min_duration", "max_duration", "duration_baseline")


# The messages are NamedTuples, not dataclasses: every cron run imports this module, and
# Python 3.11 spent about 3 ms of each wrapper's start-up generating the dataclasses' methods
# (docs/wrapper-overhead.md).  Every event starts with the same four fields: id, job, time
# (wall-clock seconds since the epoch when it happened) and pid (the wrapper's).


def event_wire(event: "Event") -> bytes:
    """An event's wire line.  Optional fields added after the first agents (the class's
    OMITTED_WHEN_NONE) are left out while None, so those agents (which refuse unknown fields)
    still accept every event that does not need them."""
    fields = event._asdict()
    for name in event.OMITTED_WHEN_NONE:
        if fields[name] is None:
            del fields[name]
    cadence = fields["cadence"] = event.cadence._asdict()
    for name in Cadence.OMITTED_WHEN_NONE:
        if cadence[name] is None:
            del cadence[name]
    return encode_message({"v": SCHEMA_VERSION, "type": event.KIND, **fields})


class Started(NamedTuple):
    """A run began: the wrapper holds the job's lock and is about to start the command."""

    id: str
    job: str
    time: float
    pid: int
    cadence: Cadence = Cadence()

    KIND = "started"
    OMITTED_WHEN_NONE = ()
    to_wire = event_wire


class Finished(NamedTuple):
    """A run ended: how, how long it took, and where its log is."""

    id: str
    job: str
    time: float
    pid: int
    start_time: float = 0.0
    exit_status: int = 0  # what the wrapper exits with: the job's status, 128+N, 124, 126, 127
    signal: int = 0  # the signal that ended the job, 0 if it exited
    duration_ms: int = 0
    timed_out: bool = False
    log_path: str | None = None
    cadence: Cadence = Cadence()
    log_problem: str | None = None  # why the run's log could not be written (all of it)
    last_message: str | None = None  # the output's last line, if the job asked (--last-message)
    cpu_ms: int | None = None  # the job's processes' CPU time, user + system, milliseconds
    max_rss_kib: int | None = None  # the peak RSS of its largest single process, KiB

    KIND = "finished"
    OMITTED_WHEN_NONE = ("log_problem", "last_message", "cpu_ms", "max_rss_kib")
    to_wire = event_wire


class Overlapped(NamedTuple):
    """A run was skipped because the previous one still holds the job's lock."""

    id: str
    job: str
    time: float
    pid: int
    holder_pid: int | None = None
    cadence: Cadence = Cadence()
    lost_wrapper_pid: int | None = None  # the cronwrap that took the lock, gone; its run holds it

    KIND = "overlapped"
    OMITTED_WHEN_NONE = ("lost_wrapper_pid",)
    to_wire = event_wire


Event = Started | Finished | Overlapped  # what a wrapper reports about one run of one job


class StatusRequest(NamedTuple):
    """A read-only query: the caller's jobs (root: all), optionally only the named ones."""

    jobs: tuple[str, ...] = ()

    KIND = "status"

    def to_wire(self) -> bytes:
        return encode_message({"v": SCHEMA_VERSION, "type": self.KIND, "jobs": list(self.jobs)})


Message = Started | Finished | Overlapped | StatusRequest
EVENT_TYPES: dict[str, type[Event]] = {cls.KIND: cls for cls in (Started, Finished, Overlapped)}
# forget, pause, resume: defined in life_messages, imported only when one arrives (every cron
# run imports this module; the wrapper never sends those)
LIFE_KINDS = frozenset({"forget", "pause", "resume"})


def encode_message(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    if len(data) > MAX_MESSAGE_BYTES:
        raise EventError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    return data


def ok_reply(**extra: Any) -> bytes:
    return encode_reply({"ok": True, **extra})


def error_reply(problem: str, reason: str | None = None) -> bytes:
    """`reason`, for requests about a job: "denied" or "not-found", so clients can tell."""
    extra = {} if reason is None else {"reason": reason}
    return encode_reply({"ok": False, "error": problem, **extra})


MAX_STATUS_REPLY_BYTES = 8 * 1024 * 1024  # the agent leaves out jobs beyond ("truncated": N)


def encode_reply(obj: dict[str, Any]) -> bytes:
    """Replies (status listings) may be larger than requests: the agent caps them."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode_message(line: bytes) -> "Message | LifeRequest":
    """Parse and validate one wire line; raise EventError naming the first problem found."""
    if len(line) > MAX_MESSAGE_BYTES:
        raise EventError(f"message exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # also 4300+ digit integers, deep nesting
        raise EventError(f"not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    if not isinstance(obj, dict):
        raise EventError("message is not a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # JSON true is not version 1
        raise EventError(f"unknown schema version {version!r} (this agent speaks {SCHEMA_VERSION})")
    kind = obj.get("type")
    if kind == StatusRequest.KIND:
        return _decode_status(obj)
    if isinstance(kind, str) and kind in LIFE_KINDS:
        from cronwrap.wrapper.life_messages import decode_life

        return decode_life(kind, obj)
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise EventError(f"unknown message type {kind!r}")
    return _decode_event(EVENT_TYPES[kind], obj)


def _decode_status(obj: dict[str, Any]) -> StatusRequest:
    _reject_unknown(obj, {"v", "type", "jobs"})
    jobs = obj.get("jobs", [])
    if not isinstance(jobs, list) or not all(is_valid_job_name(j) for j in jobs):
        raise EventError("'jobs' must be a list of valid job names")
    return StatusRequest(jobs=tuple(jobs))


_COMMON = {"v", "type", "id", "job", "time", "pid"}
_EXTRA: dict[str, set[str]] = {
    "started": {"cadence"},
    "finished": {
        "start_time", "exit_status", "signal", "duration_ms", "timed_out", "log_path", "cadence",
        "log_problem", "last_message", "cpu_ms", "max_rss_kib",
    },
    "overlapped": {"holder_pid", "cadence", "lost_wrapper_pid"},
}


def _decode_event(cls: type[Event], obj: dict[str, Any]) -> Event:
    _reject_unknown(obj, _COMMON | _EXTRA[cls.KIND])
    event_id = obj.get("id")
    if not isinstance(event_id, str) or re.fullmatch(r"[0-9a-f]{32}", event_id) is None:
        raise EventError("'id' must be 32 lowercase hex digits")
    if not is_valid_job_name(obj.get("job")):
        raise EventError(f"invalid job name {obj.get('job')!r}")
    fields: dict[str, Any] = {
        "id": event_id,
        "job": obj["job"],
        "time": _number(obj, "time", 0, 2**33),
        "pid": _integer(obj, "pid", 1, MAX_PID),
    }
    if "cadence" in obj:
        fields["cadence"] = _decode_cadence(obj["cadence"])
    if cls is Finished:
        fields["start_time"] = _number(obj, "start_time", 0, 2**33)
        fields["exit_status"] = _integer(obj, "exit_status", 0, 255)
        fields["signal"] = _integer(obj, "signal", 0, 255)
        fields["duration_ms"] = _integer(obj, "duration_ms", 0, MAX_DURATION_MS)
        fields["timed_out"] = _boolean(obj, "timed_out")
        fields["log_path"] = _optional_text(obj, "log_path", MAX_PATH_CHARS)
        fields["log_problem"] = _optional_text(obj, "log_problem", MAX_PROBLEM_CHARS)
        fields["last_message"] = _optional_text(obj, "last_message", MAX_MESSAGE_CHARS)
        for name in ("cpu_ms", "max_rss_kib"):
            if obj.get(name) is not None:
                fields[name] = _integer(obj, name, 0, MAX_USAGE)
    elif cls is Overlapped:
        if obj.get("holder_pid") is not None:
            fields["holder_pid"] = _integer(obj, "holder_pid", 1, MAX_PID)
        if obj.get("lost_wrapper_pid") is not None:
            fields["lost_wrapper_pid"] = _integer(obj, "lost_wrapper_pid", 1, MAX_PID)
    return cls(**fields)


def _decode_cadence(value: object) -> Cadence:
    if not isinstance(value, dict):
        raise EventError("'cadence' must be an object")
    _reject_unknown(value, {"schedule", "every", "grace", "timeout", "max_runtime", "tz",
                            *Cadence.OMITTED_WHEN_NONE})
    schedule = _schedule(value)
    tz = value.get("tz")
    if tz is not None and not is_valid_zone_name(tz):
        raise EventError("'tz' must be a time zone name like Europe/London")
    seconds = {
        key: None if value.get(key) is None else _number(value, key, 0, MAX_SECONDS)
        for key in ("every", "grace", "timeout", "max_runtime", "min_duration", "max_duration")
    }
    baseline = None if value.get("duration_baseline") is None else _boolean(
        value, "duration_baseline")
    return Cadence(schedule=schedule, tz=tz, duration_baseline=baseline, **seconds)


def _reject_unknown(obj: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise EventError(f"unknown field {unknown[0]!r}")


def _integer(obj: dict[str, Any], key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise EventError(f"'{key}' must be an integer in {low}..{high}")
    return value


def _number(obj: dict[str, Any], key: str, low: float, high: float) -> float:
    value = obj.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise EventError(f"'{key}' must be a number in {low}..{high}")
    return float(value)


def _boolean(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise EventError(f"'{key}' must be true or false")
    return value


def _optional_text(obj: dict[str, Any], key: str, max_chars: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise EventError(f"'{key}' must be a string of at most {max_chars} characters")
    return safe_text(value, max_chars)


def _schedule(obj: dict[str, Any]) -> str | None:
    value = obj.get("schedule")
    if value is None:
        return None
    if (not isinstance(value, str) or len(value) > MAX_SCHEDULE_CHARS
            or re.fullmatch(SCHEDULE_PATTERN, value) is None):
        raise EventError(f"'schedule' must be printable ASCII, at most {MAX_SCHEDULE_CHARS} "
                         "characters")
    return value


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
# one character of safe_text's output: an escape, or a printable ASCII character (compiled on
# first use: every cron run imports this module)
_SAFE_TOKEN = r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|.)|."


def safe_text(text: str, max_chars: int) -> str:
    """Free text a user sent, as printable ASCII (docs/protocol.md, "Text the agent keeps").

    Text that is printable ASCII is kept as sent. Any other text is escaped: the backslash is
    written `\\\\`, newline, tab and carriage return `\\n`, `\\t`, `\\r`, any other character
    outside printable ASCII `\\xHH`, `\\uHHHH` or `\\UHHHHHHHH` (its code point: a lone
    surrogate, which UTF-8 cannot hold, is `\\ud800`). So the result is printable ASCII and
    safe_text of it is itself. Longer than `max_chars`, it is cut between two escapes and ends
    in CUT_MARK.
    """
    if not is_safe_text(text):
        text = "".join(map(_escaped, text))
    return cut_text(text, max_chars)


def is_safe_text(text: str) -> bool:
    """Whether `text` is printable ASCII (what every DisplayString may hold)."""
    return text.isascii() and text.isprintable()


def cut_text(text: str, max_chars: int) -> str:
    """safe_text's output cut to at most `max_chars`, between two escapes, marked CUT_MARK."""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(CUT_MARK)
    kept = 0
    for token in re.finditer(_SAFE_TOKEN, text, re.DOTALL):
        if token.end() > room:
            break
        kept = token.end()
    return text[:kept] + CUT_MARK


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if " " <= char <= "~":
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
