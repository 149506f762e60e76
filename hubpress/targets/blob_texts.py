"""Small files a Hub target read or committed (manifest.json, README.md, release.json): checked
before use, and kept on this machine by their git blob id.

Anyone with write access decides what these files hold, so what a download returns is held to
the listing (its sha256 when the file is stored in LFS or Xet, its git blob id otherwise), to
`MAX_DOCUMENT_BYTES` (hubpress.parsers) and to UTF-8 before any parser sees it. A file that fails
the size or text rule is a ParseLimitError naming it (a caller that can do without the file, as
a publish can without its manifest, goes on without it); other bytes than listed are a
PublishError.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile

from hubpress.errors import PublishError
from hubpress.parsers import MAX_DOCUMENT_BYTES, ParseLimitError
from hubpress.targets.plan import RemoteFile, git_blob_oid

log = logging.getLogger("hubpress.hub")


class BlobTexts:
    """Small files by their git blob id (content-addressed: an entry is right forever). A copy
    whose bytes no longer hash to its id is ignored."""

    def __init__(self, root: str):
        self.root = root

    def _path(self, oid: str) -> str:

        return os.path.join(self.root, oid[:2], oid)

    def get(self, oid: str) -> str | None:
        try:
            with open(self._path(oid), "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        return data.decode("utf-8", errors="replace") if git_blob_oid(data) == oid else None

    def put(self, data: bytes) -> None:

        path = self._path(git_blob_oid(data))
        if os.path.exists(path):
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:  # a cache that cannot be written only costs a download next time
            log.debug("could not keep a copy of a committed file: %s", exc)


def too_large(path: str, where: str, size: int) -> ParseLimitError | None:
    """The refusal of a small file over MAX_DOCUMENT_BYTES (by its listed or downloaded size)."""
    if size <= MAX_DOCUMENT_BYTES:
        return None
    return ParseLimitError(
        f"{path} of {where} is {size:,} bytes, over the {MAX_DOCUMENT_BYTES:,}-byte limit for a document "
        "hubpress reads back; it was not read."
    )


def checked_text(
    data: bytes, path: str, where: str, revision: str, listed: RemoteFile | None, git_oid: str | None
) -> str:
    """`data`, downloaded as `path` of `where`, as text once it is what the listing names (sha256 for
    an LFS or Xet file, git blob id for a regular one), within the size limit, and UTF-8."""
    if (refusal := too_large(path, where, len(data))) is not None:
        raise refusal
    if listed is not None and listed.sha256:
        problem = (
            hashlib.sha256(data).hexdigest() != listed.sha256 and f"sha256 is not the {listed.sha256[:12]}"
        )
    else:
        problem = bool(git_oid) and git_blob_oid(data) != git_oid and f"git blob id is not the {git_oid[:12]}"
    if problem:
        raise PublishError(
            f"Downloaded {path} of {where} at {revision[:12]}, but its {problem} the Hub lists: the Hub "
            "or the connection returned other bytes. Run again; if it repeats, check what sits between "
            "this machine and the Hub."
        )
    return utf8_text(data, path, where)


def utf8_text(data: bytes, path: str, where: str) -> str:
    """`data` as text, or the one line saying `path` of `where` is not UTF-8 (a Hub's or a local
    target's copy: the same refusal)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseLimitError(
            f"{path} of {where} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}); "
            "hubpress cannot read it back."
        ) from None
