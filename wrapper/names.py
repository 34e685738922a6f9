"""The default job name derived from a command: one rule, shared by the wrapper and the agent.

The wrapper names a job without `-n` after its command's file name; the agent's crontab
discovery must derive the very same name from the same crontab line, so both call
derive_job_name().  Standard library only, imported on the wrapper's hot path: keep it cheap.

The rule (documented in docs/wrapper.md):
- a file name that already is a valid job name (1-64 of A-Z a-z 0-9 . _ -, starting with a
  letter or digit) is the name, unchanged;
- otherwise the readable part (accents stripped from letters, other characters dropped, leading
  `.`, `_`, `-` dropped, cut to 55 characters) gets `-` and 8 hex digits of the CRC-32 of the
  whole file name, so `bäckup` (backup-xxxxxxxx), `bckup` and `backup` stay three jobs;
- a file name with no readable character at all (`...`, `バックアップ`) gives no name: the
  caller must ask for `-n NAME`.
"""

from __future__ import annotations

import os

MAX_NAME_CHARS = 64
DIGEST_CHARS = 8  # hex digits of the CRC-32 suffix
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_LEADING = "._-"


def derive_job_name(command: str) -> str | None:
    """The job name for `command` (a path or a bare command name), or None if none derives."""
    base = os.path.basename(command.rstrip("/"))
    readable = _readable(base)
    if readable == base and len(base) <= MAX_NAME_CHARS:
        return base or None
    if not base.isascii():
        import unicodedata  # only for names with non-ASCII characters

        readable = _readable(unicodedata.normalize("NFKD", base))
    if not readable:
        return None
    head = readable[: MAX_NAME_CHARS - DIGEST_CHARS - 1]
    return f"{head}-{_digest(base)}"


def _readable(text: str) -> str:
    return "".join(c for c in text if c in _ALLOWED).lstrip(_LEADING)


def _digest(base: str) -> str:
    """8 hex digits of the CRC-32 of the file name's bytes (as the kernel passed them)."""
    from binascii import crc32

    return f"{crc32(os.fsencode(base)):08x}"
