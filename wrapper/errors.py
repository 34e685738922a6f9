"""The wrapper's own failures, each carrying the sysexits-style status the wrapper exits with."""

from __future__ import annotations

EX_USAGE = 64
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78


class WrapperError(Exception):
    """A problem reported as one line on stderr; the wrapper then exits with `exit_code`."""

    exit_code = 70  # EX_SOFTWARE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(WrapperError):
    """A mistake on the command line: bad option, name, duration or size."""

    exit_code = EX_USAGE


class ConfigError(WrapperError):
    """An unreadable or malformed configuration or environment file."""

    exit_code = EX_CONFIG


class UnsafePathError(WrapperError):
    """A lock or private directory that is a symlink, foreign-owned, or otherwise untrustworthy."""

    exit_code = EX_CANTCREAT
