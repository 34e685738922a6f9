"""The socket protocol's requests about a job's life (forget, pause, resume) and their decoding.

Kept out of events.py, which every cron run imports: only `cronwrap forget/pause/resume` and
the agent (when such a request arrives) load this module.  Framing and replies: events.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from cronwrap.wrapper.events import (
    MAX_SECONDS,
    SCHEMA_VERSION,
    EventError,
    _integer,
    _number,
    _reject_unknown,
    encode_message,
    is_valid_job_name,
)

MAX_UID = 2**32 - 2  # (uid_t)-1 means "no uid"


@dataclass(frozen=True)
class LifeRequest:
    """A change to one job's life (`cronwrap forget/pause/resume`): the caller's own job, or
    with `owner_uid` another user's, which the agent allows to root only."""

    KIND: ClassVar[str] = ""
    job: str
    owner_uid: int | None = None

    def to_wire(self) -> bytes:
        fields = {key: value for key, value in asdict(self).items() if value is not None}
        return encode_message({"v": SCHEMA_VERSION, "type": self.KIND, **fields})


@dataclass(frozen=True)
class ForgetRequest(LifeRequest):
    """Drop the job's row and counts."""

    KIND: ClassVar[str] = "forget"


@dataclass(frozen=True)
class PauseRequest(LifeRequest):
    """No notifications and no misses for `seconds` from when the agent applies it."""

    KIND: ClassVar[str] = "pause"
    seconds: float = 0.0


@dataclass(frozen=True)
class ResumeRequest(LifeRequest):
    """End the job's pause now."""

    KIND: ClassVar[str] = "resume"


LIFE_TYPES: dict[str, type[LifeRequest]] = {
    cls.KIND: cls for cls in (ForgetRequest, PauseRequest, ResumeRequest)}


def decode_life(kind: str, obj: dict[str, Any]) -> LifeRequest:
    """The request of type `kind` in a decoded wire object; EventError names what is wrong."""
    cls = LIFE_TYPES[kind]
    _reject_unknown(obj, {"v", "type", "job", "owner_uid"}
                    | ({"seconds"} if cls is PauseRequest else set()))
    if not is_valid_job_name(obj.get("job")):
        raise EventError(f"invalid job name {obj.get('job')!r}")
    fields: dict[str, Any] = {"job": obj["job"]}
    if obj.get("owner_uid") is not None:
        fields["owner_uid"] = _integer(obj, "owner_uid", 0, MAX_UID)
    if cls is PauseRequest:
        fields["seconds"] = _number(obj, "seconds", 1, MAX_SECONDS)
    return cls(**fields)
