"""Opening a directory by path so that nothing another user controls can redirect it.

The path is walked from `/` one component at a time with directory file descriptors. Every
directory on the way must belong to root or to the caller and must not be writable by all
(unless sticky, like /tmp, where nobody can rename or remove another user's entries). A
symlink on the way (/var/run -> /run) is followed only if it belongs to root or to the
caller: one planted by another user is refused, never followed. The directory itself must
not be a symlink at all, nor writable by its group. What the caller then does goes through
the returned descriptor, so a path component swapped afterwards changes nothing.
"""

from __future__ import annotations

import os
import stat

from cronwrap.wrapper.errors import UnsafePathError

_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def open_trusted_dir(path: str, uid: int, create_mode: int | None = None) -> int:
    """An O_PATH fd on directory `path`, refusing anything another user could have swapped.

    With `create_mode`, missing components are created with that mode (as the caller).
    Raises UnsafePathError (one line naming the component and why) for an untrustworthy or
    unusable path, FileNotFoundError if it is missing and `create_mode` is None.
    """
    names = [name for name in os.path.abspath(path).split("/") if name]
    fd = os.open("/", _PATH_FLAGS)
    if not names:
        try:
            _check(fd, "/", uid, final=True)
        except BaseException:
            os.close(fd)
            raise
    where = ""
    for index, name in enumerate(names):
        where += "/" + name
        fd = _step(fd, name, where, uid, create_mode, final=index == len(names) - 1)
    return fd


def _step(parent_fd: int, name: str, where: str, uid: int, create_mode: int | None,
          final: bool) -> int:
    """Open `name` under a trusted `parent_fd`, checked; `parent_fd` is closed in any case."""
    try:
        info = _lstat_or_create(parent_fd, name, where, create_mode)
        if stat.S_ISLNK(info.st_mode):
            if final:
                raise UnsafePathError(f"{where} is a symlink (give the directory itself)")
            if info.st_uid not in (0, uid):
                raise UnsafePathError(f"{where} is a symlink owned by uid {info.st_uid}")
            flags = _PATH_FLAGS  # root's or the caller's own symlink: followed
        else:
            flags = _PATH_FLAGS | os.O_NOFOLLOW
        try:
            fd = os.open(name, flags, dir_fd=parent_fd)
        except OSError as exc:
            raise UnsafePathError(f"{where}: {_why(exc)}") from None
    finally:
        os.close(parent_fd)
    try:
        _check(fd, where, uid, final)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lstat_or_create(parent_fd: int, name: str, where: str,
                     create_mode: int | None) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        if create_mode is None:
            raise
    except OSError as exc:
        raise UnsafePathError(f"cannot use {where}: {exc.strerror}") from None
    try:
        os.mkdir(name, create_mode, dir_fd=parent_fd)
    except FileExistsError:
        pass  # created meanwhile: checked like any other entry
    except OSError as exc:
        raise UnsafePathError(f"cannot create {where}: {exc.strerror}") from None
    return os.stat(name, dir_fd=parent_fd, follow_symlinks=False)


def _check(fd: int, where: str, uid: int, final: bool) -> None:
    info = os.fstat(fd)
    writable_by = 0o022 if final else 0o002
    if info.st_uid not in (0, uid):
        raise UnsafePathError(f"{where} is owned by uid {info.st_uid}, not {uid} or root")
    if info.st_mode & writable_by and not info.st_mode & stat.S_ISVTX:
        whom = "others" if final else "everyone"
        raise UnsafePathError(f"{where} is writable by {whom} and not sticky")


def _why(exc: OSError) -> str:
    if exc.errno in (40, 20):  # ELOOP, ENOTDIR: swapped for a symlink meanwhile, or a file
        return "not a directory (or replaced by a symlink)"
    return exc.strerror or str(exc)
