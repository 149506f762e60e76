"""Small files a Hub target read or committed, kept on this machine by their git blob id."""

from __future__ import annotations

import logging
import os
import tempfile

from hubpress.targets.plan import git_blob_oid

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
