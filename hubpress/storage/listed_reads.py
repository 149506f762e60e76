"""A local file read as the file the listing saw, inside the root it was listed under.

A listing names files; reading comes later. Between the two, a file can be swapped for a symbolic
link to a file outside the source (or a folder on its path for a link to a folder outside), and
a file that was a link out at listing time is still one at reading time. A CSV (train.csv) linked
to a file elsewhere was read as the source's own, and its cells published as prompts; a training
output's config or metrics swapped for a link after the release listed them was read through it.

So a read of a listed file (`open_listed`) resolves the path, refuses it unless it stays inside
the root, opens the resolved path as a regular file, and holds the open file to the identity the
listing recorded (size, the stat version of hubpress.storage.hashcache, which user space cannot
restore, and the inode when known): whatever was swapped in between, on any component of the
path, is another file and is not read. One line (`NotTheListedFile`) names the path and what to do.

A copy of a listed file (`copied_as_listed`: the post-training release's copy of the chosen
weights, config and samples, from a local folder or S3) is held to the listing the same way and to
its listed size as it is written: an S3 store answering more or fewer bytes than the object it
listed, or a local file rewritten while it is copied, leaves nothing at the destination.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from hubpress.errors import SourceError
from hubpress.storage.hashcache import stat_version
from hubpress.storage.names import is_inside
from hubpress.storage.regular import open_regular


class NotTheListedFile(SourceError):
    """A listed file that leads outside its root, or was replaced since the listing: never read."""


def open_listed(
    path: str,
    root: str,
    size: int | None = None,
    version: str | None = None,
    inode: int | None = None,
    resolved: bool = False,
) -> BinaryIO:
    """`path` (under `root`) open for reading, when it is inside the root and, for what is given,
    has the listed size, stat version and inode. `resolved`: the caller gives both already
    resolved and checked (validation does, for every file of a dataset)."""
    real = path if resolved else os.path.realpath(path)
    if not resolved and not is_inside(real, os.path.realpath(root)):
        raise NotTheListedFile(
            f"{path} is a symbolic link to a file outside {root}; it is not read. Replace the link "
            "with the file itself."
        )
    fh = open_regular(real)
    st = os.fstat(fh.fileno())
    if (
        (size is not None and st.st_size != size)
        or (version is not None and stat_version(st) != version)
        or (inode is not None and st.st_ino != inode)
    ):
        fh.close()
        raise NotTheListedFile(
            f"{path} is no longer the file that was listed (replaced or changed since); it is not "
            "read. Run again once nothing writes to it."
        )
    return fh


COPY_CHUNK = 1024 * 1024


def read_as_listed(source: BinaryIO, size: int, where: str) -> bytes:
    """All of `source`, which must be `size` bytes (the listed size): at most one byte more is
    read, so an answer without end is not held in memory."""
    data = source.read(size + 1)
    if len(data) != size:
        raise _other_length(where, size, len(data))
    return data


def copied_as_listed(source: BinaryIO, local_path: str | os.PathLike[str], size: int, where: str) -> None:
    """`source` written to `local_path`, which then holds exactly the listed `size` bytes; else
    NotTheListedFile, and nothing is left at `local_path`. At most one byte over `size` is read."""
    written = 0
    try:
        with open(local_path, "wb") as dst:
            while written <= size and (chunk := source.read(min(COPY_CHUNK, size + 1 - written))):
                written += len(chunk)
                dst.write(chunk)
        if written != size:
            raise _other_length(where, size, written)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(local_path).unlink()
        raise


def _other_length(where: str, size: int, got: int) -> NotTheListedFile:
    said = f"more than {size:,}" if got > size else f"{got:,}"
    return NotTheListedFile(
        f"{where} gave {said} bytes, but it was listed at {size:,} bytes: it is not the file that was "
        "listed (written to since, or the store answered other bytes) and nothing of it is kept. Run "
        "again once nothing writes to it; if it repeats, check the store and any proxy in between."
    )
