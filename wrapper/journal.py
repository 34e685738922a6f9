"""Write one structured journald record per run over the native journal protocol.

Standard library only (the wrapper must not import systemd-python).  The record is one
non-blocking datagram to journald's socket in the documented format (systemd's
JOURNAL_NATIVE_PROTOCOL): "KEY=VALUE\\n" per field, or "KEY\\n" + 64-bit little-endian length +
VALUE + "\\n" when the value holds a newline.  Values are capped (MAX_VALUE_BYTES) instead of
passing large payloads through a memfd.

API (the wrapper's CLI calls this once per run, after the job ended):

    problem = log_run(job="backup", state="failed", exit_status=3, signal=0,
                      duration_ms=1234, timed_out=False, log_path="/var/log/...")
    # None: recorded, or no journal on this host (no socket file: silently nothing).
    # Otherwise one line saying why it was not recorded (journald refusing, busy...).
    # It never raises and never blocks; print the line only as a warning.

Read the records back with `journalctl _UID=0 JOB_NAME=backup` (the owner's uid: anyone can forge
the other fields; docs/operations.md).
"""

from __future__ import annotations

import _socket  # the C module: `socket` costs ~2 ms of enum set-up on every wrapped run
import errno
import os
from collections.abc import Iterable, Mapping

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_IDENTIFIER = "cronwrap"
MAX_VALUE_BYTES = 8 * 1024
PRIORITY_ERR, PRIORITY_WARNING, PRIORITY_INFO = 3, 4, 6
_FIELD_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_FIELD_CHARS = _FIELD_START | {"_"}  # names are [A-Z0-9][A-Z0-9_]{0,63}; no regex to compile


class JournalFieldError(ValueError):
    """A field name journald would reject; str() is one line."""


def encode_fields(fields: Iterable[tuple[str, str | bytes]]) -> bytes:
    """Serialize fields in the native protocol; values holding b"\\n" use the length form."""
    out = bytearray()
    for name, value in fields:
        if not (0 < len(name) <= 64 and name[0] in _FIELD_START and _FIELD_CHARS.issuperset(name)):
            raise JournalFieldError(f"invalid journal field name {name!r}")
        data = value.encode("utf-8", "replace") if isinstance(value, str) else bytes(value)
        data = data[:MAX_VALUE_BYTES]
        key = name.encode("ascii")
        if b"\n" in data:
            out += key + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += key + b"=" + data + b"\n"
    return bytes(out)


def describe_run(
    job: str, state: str, exit_status: int, signal: int, duration_ms: int, timed_out: bool
) -> str:
    """The human MESSAGE, e.g. "cronwrap: backup failed (exit 3) in 1.2s"."""
    took = f"{duration_ms / 1000:.1f}s"
    if state == "overlapped":
        return f"cronwrap: {job} skipped: previous run still running"
    if timed_out:
        return f"cronwrap: {job} timed out after {took} (exit {exit_status})"
    if signal:
        return f"cronwrap: {job} killed by signal {signal} (exit {exit_status}) after {took}"
    if state == "ok":
        return f"cronwrap: {job} ok in {took}"
    return f"cronwrap: {job} failed (exit {exit_status}) in {took}"


def run_fields(
    *,
    job: str,
    state: str,
    exit_status: int,
    signal: int = 0,
    duration_ms: int = 0,
    timed_out: bool = False,
    log_path: str | None = None,
    extra: Mapping[str, str] | None = None,
    message: str | None = None,
) -> list[tuple[str, str]]:
    """The journal fields of one run, MESSAGE first (`message`, else describe_run's)."""
    if state == "ok":
        priority = PRIORITY_INFO
    elif state == "overlapped":
        priority = PRIORITY_WARNING
    else:
        priority = PRIORITY_ERR
    fields = [
        ("MESSAGE", message or describe_run(job, state, exit_status, signal, duration_ms,
                                            timed_out)),
        ("PRIORITY", str(priority)),
        ("SYSLOG_IDENTIFIER", SYSLOG_IDENTIFIER),
        ("JOB_NAME", job),
        ("JOB_STATE", state),
        ("EXIT_STATUS", str(exit_status)),
        ("SIGNAL", str(signal)),
        ("DURATION_MS", str(duration_ms)),
        ("TIMED_OUT", "1" if timed_out else "0"),
    ]
    if log_path:
        fields.append(("LOG_PATH", log_path))
    fields.extend((extra or {}).items())
    return fields


def send_record(payload: bytes, socket_path: str = JOURNAL_SOCKET) -> str | None:
    """Send one datagram without blocking; None when sent or when there is no journal socket."""
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    except OSError as exc:
        return f"journal record not sent: cannot create a socket: {exc.strerror or exc}"
    try:
        sock.sendto(payload, _socket.MSG_DONTWAIT, socket_path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"journal record not sent to {socket_path}: {_reason(exc)}"
    finally:
        sock.close()
    return None


def log_run(
    *,
    job: str,
    state: str,
    exit_status: int,
    signal: int = 0,
    duration_ms: int = 0,
    timed_out: bool = False,
    log_path: str | None = None,
    extra: Mapping[str, str] | None = None,
    message: str | None = None,
    socket_path: str = JOURNAL_SOCKET,
) -> str | None:
    """Record one run in the journal; None, or one line saying why it was not recorded."""
    try:
        payload = encode_fields(
            run_fields(
                job=job, state=state, exit_status=exit_status, signal=signal,
                duration_ms=duration_ms, timed_out=timed_out, log_path=log_path, extra=extra,
                message=message,
            )
        )
    except JournalFieldError as exc:
        return f"journal record not sent: {exc}"
    return send_record(payload, socket_path)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ECONNREFUSED:
        return "journald is not listening (connection refused)"
    if exc.errno == errno.EAGAIN:
        return "journald is busy (its queue is full); record dropped"
    if exc.errno == errno.EMSGSIZE:
        return "record too large"
    return exc.strerror or os.strerror(exc.errno or 0) or type(exc).__name__
