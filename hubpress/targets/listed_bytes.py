"""A downloaded file held to what the Hub lists for it: its size, and its sha256 (a file in LFS or
Xet) or git blob id (a regular file).

huggingface_hub does not check a download's content against the listing, and hf_xet rebuilds
whatever file the resolve answer's `X-Xet-Hash` names, cut or padded to the size it was told, with
no error: a Hub (or anything answering in its place) naming another file's Xet hash had its bytes
kept in the cache under the listed sha256, and read as that file. So every file hubpress downloads
whole (download-lora's file, a refresh's upstream parquet files) is checked here after the
download; a file that fails is removed from the cache (the snapshot entry and the blob it points
to), so no later run finds it there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os


def digests(path: str) -> tuple[int, str, str]:
    """(size, sha256, git blob id) of a file, in one read."""
    size = os.path.getsize(path)
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            sha256.update(chunk)
            blob.update(chunk)
    return size, sha256.hexdigest(), blob.hexdigest()


def not_as_listed(path: str, size: int | None, sha256: str | None, git_oid: str | None) -> str | None:
    """Why the file at `path` is not the one listed (size, sha256 or blob id), or None."""
    got_size, got_sha, got_blob = digests(path)
    if size is not None and got_size != size:
        return f"it has {got_size:,} bytes, the Hub lists {size:,}"
    if sha256 is not None and got_sha != sha256:
        return f"its sha256 is {got_sha[:16]}..., the Hub lists {sha256[:16]}..."
    if sha256 is None and git_oid and got_blob != git_oid:
        return f"its git blob id is {got_blob[:12]}, the Hub lists {git_oid[:12]}"
    return None


def remove_from_cache(path: str) -> None:
    """The snapshot entry and the blob it points to (through the repo's blob link, when the cache
    keeps blobs in a shared store): nothing of a refused file stays cached."""
    chain = [path]
    with contextlib.suppress(OSError):
        while os.path.islink(chain[-1]) and len(chain) < 8:
            target = os.readlink(chain[-1])
            chain.append(os.path.join(os.path.dirname(chain[-1]), target))
    chain.append(os.path.realpath(path))
    for victim in chain:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(victim)
