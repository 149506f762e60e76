"""Only regular files are read.

A symlink to /dev/zero or /dev/urandom, a FIFO, a device or a socket inside a source tree, a local
target, a training output or an extra file would be read forever (or block forever on open). Every
local read of a file hubpress did not create goes through `open_regular` (or `read_regular`): the
path is stat'ed (through symlinks), opened without blocking, and checked again on the open file
(it may have been swapped in between). Anything else is refused with NotRegularFile, one line
naming the path and what it is; listings report such entries instead of reading them
(hubpress.storage.files.LocalStorage.list).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from hubpress.errors import SourceError


class NotRegularFile(SourceError):
    """A path that should be a file is a device, FIFO, socket or directory: it is never read."""


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, for a message; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def why_not_regular(path: str | os.PathLike[str]) -> str | None:
    """Why `path` (followed through symlinks) is not read, or None when it is a regular file."""
    kind = kind_of(os.stat(path).st_mode)
    if kind is None:
        return None
    via = " (through a symbolic link)" if os.path.islink(path) else ""
    return f"is {kind}{via}, not a regular file; it is not read"


def _refuse(path, why: str) -> NotRegularFile:
    return NotRegularFile(f"{os.fspath(path)} {why}.")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading; refuse anything else without blocking on it."""
    why = why_not_regular(path)
    if why:
        raise _refuse(path, why)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO swapped in) cannot be opened like a file
            raise _refuse(path, "is not a regular file (a socket or pipe); it is not read") from None
        raise
    try:
        kind = kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            raise _refuse(path, f"is {kind}, not a regular file; it is not read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file; with max_bytes, one byte more than that at most (so a caller's
    size limit sees the file is too big without reading all of it)."""
    with open_regular(path) as fh:
        return fh.read() if max_bytes is None else fh.read(max_bytes + 1)
