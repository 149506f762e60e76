"""Reading a sample's source files at build time, held to what validation saw."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlparse

from hubpress.errors import SourceError
from hubpress.settings import Settings
from hubpress.sources.models import FileRef
from hubpress.storage.files import Storage, is_s3, open_storage


class SourceReader:
    """Reads a FileRef's bytes from a local path or S3 and checks that they are the bytes that
    validation saw: a file that changed since validation is an error, never different data.

    A local file that validation listed with its size and mtime is held to those, read from the
    open file before and after reading (the same identity the validation cache trusts), so its
    bytes are not hashed a second time; anything else is held to the sha256 validation recorded."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings
        self._buckets: dict[str, Storage] = {}

    def _raw(self, ref: FileRef) -> bytes:
        if is_s3(ref.uri):
            parsed = urlparse(ref.uri)
            storage = self._buckets.get(parsed.netloc)
            if storage is None:
                storage = self._buckets[parsed.netloc] = open_storage(f"s3://{parsed.netloc}", self.settings)
            from botocore.exceptions import ClientError

            try:
                return storage.read_bytes(parsed.path.lstrip("/"))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    raise FileNotFoundError(ref.uri) from exc
                raise
        with open(ref.uri, "rb") as fh:
            return fh.read()

    def __call__(self, ref: FileRef) -> bytes:
        try:
            if ref.version is not None and ref.sha256 is not None and not is_s3(ref.uri):
                return self._local_unchanged(ref)
            data = self._raw(ref)
        except FileNotFoundError:
            raise SourceError(
                f"{ref.relpath}: the source file {ref.uri} disappeared after validation. "
                "Run the publish again so that intake lists the source afresh."
            ) from None
        if ref.sha256 is not None and hashlib.sha256(data).hexdigest() != ref.sha256:
            raise _changed(ref, "its sha256 no longer matches")
        return data

    @staticmethod
    def _local_unchanged(ref: FileRef) -> bytes:
        with open(ref.uri, "rb") as fh:
            before = os.fstat(fh.fileno())
            data = fh.read()
            after = os.fstat(fh.fileno())
        for st in (before, after):
            # The version is what the listing recorded: "mtime_ns:inode" (or mtime_ns alone).
            version = f"{st.st_mtime_ns}:{st.st_ino}" if ":" in ref.version else str(st.st_mtime_ns)
            if st.st_size != ref.size or version != ref.version or len(data) != ref.size:
                raise _changed(ref, "its size or modification time differs from what was validated")
        return data


def _changed(ref: FileRef, why: str) -> SourceError:
    return SourceError(
        f"{ref.relpath}: the source file {ref.uri} changed after validation ({why}). Run the publish "
        "again so that the new content is validated before it is published."
    )
