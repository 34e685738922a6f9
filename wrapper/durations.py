"""Parsing the durations (`90s`, `15m`, `1h30m`) and sizes (`10M`) cronwrap accepts."""

from __future__ import annotations

import re

from cronwrap.wrapper.errors import UsageError

MAX_SECONDS = 10 * 365 * 24 * 3600
_NUMBER = r"\d+(?:\.\d+)?"  # patterns compile on first use (re caches them)
_DURATION_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)"
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?"
_INTEGER = r"\d{1,12}"
_SIZE_FACTOR = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds from `90`, `1.5`, `90s`, `15m`, `2h`, `1d`, `1h30m`; else UsageError."""
    value = text.strip().lower()
    if re.fullmatch(_NUMBER, value, re.ASCII):
        seconds = float(value)
    else:
        pos, total = 0, 0.0
        for match in re.finditer(_DURATION_PART, value, re.ASCII):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos == 0 or pos != len(value):
            raise UsageError(
                f"{option}: {text!r} is not a duration (examples: 90, 90s, 15m, 2h, 1d, 1h30m)"
            )
        seconds = total
    if not 0 <= seconds <= MAX_SECONDS:
        raise UsageError(f"{option}: {text!r} is out of range (0 to 10 years)")
    return seconds


def parse_size(text: str, option: str = "size") -> int:
    """Bytes from `1048576`, `512K`, `10M`, `1G`, `10MiB`, `10MB` (binary multiples)."""
    match = re.fullmatch(_SIZE, text.strip(), re.IGNORECASE | re.ASCII)
    if match is None:
        raise UsageError(f"{option}: {text!r} is not a size (examples: 65536, 512K, 10M, 1G)")
    size = int(float(match.group(1)) * _SIZE_FACTOR[match.group(2).upper()])
    if size > 1 << 50:
        raise UsageError(f"{option}: {text!r} is too large")
    return size


def parse_count(text: str, option: str, minimum: int = 0, maximum: int = 1_000_000) -> int:
    """A whole number in minimum..maximum, or UsageError naming `option`."""
    value = text.strip()
    if not re.fullmatch(_INTEGER, value, re.ASCII) or not minimum <= int(value) <= maximum:
        raise UsageError(f"{option}: {text!r} must be a whole number from {minimum} to {maximum}")
    return int(value)


def parse_number(text: str, option: str) -> float:
    """A non-negative decimal number such as `7` or `0.5`."""
    value = text.strip()
    if not re.fullmatch(_NUMBER, value, re.ASCII) or float(value) > MAX_SECONDS:
        raise UsageError(f"{option}: {text!r} must be a number such as 7 or 0.5")
    return float(value)
