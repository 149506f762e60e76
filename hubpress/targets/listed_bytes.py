"""A downloaded file held to what the Hub lists for it: its size, and its sha256 (a file in LFS or
Xet) or git blob id (a regular file).

huggingface_hub does not check a download's content against the listing, and hf_xet rebuilds
whatever file the resolve answer's `X-Xet-Hash` names, cut or padded to the size it was told, with
no error: a Hub (or anything answering in its place) naming another file's Xet hash had its bytes
kept in the cache under the listed sha256, and read as that file. So every file hubpress downloads
whole (download-lora's file, a refresh's upstream parquet files) is checked here after the
download; a file that fails is removed from the cache (the snapshot entry and the blob it points
to), so no later run finds it there.

A copy already in the cache is held to the listing the same way before it is read
(`cached_not_as_listed`): huggingface_hub hands such a copy over without any request, whoever put it
there. Its sha256 comes through hubpress's hash cache, keyed by the copy's size, modification and
change times and inode, so an unchanged copy is read once, not on every run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from collections.abc import Callable

from hubpress.storage.names import is_inside


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


def why_not_listed(
    size: int | None,
    sha256: str | None,
    git_oid: str | None,
    got_size: int,
    got_sha256: Callable[[], str],
    got_blob: Callable[[], str],
) -> str | None:
    """Why a file of `got_size` bytes is not the one listed (size, sha256 or blob id), or None: the
    one comparison of a download, a cached copy and bytes read. Its digests are asked only when
    needed (a file of another size is not read)."""
    if size is not None and got_size != size:
        return f"it has {got_size:,} bytes, the Hub lists {size:,}"
    if sha256 is not None and (got := got_sha256()) != sha256:
        return f"its sha256 is {got[:16]}..., the Hub lists {sha256[:16]}..."
    if sha256 is None and git_oid and (blob := got_blob()) != git_oid:
        return f"its git blob id is {blob[:12]}, the Hub lists {git_oid[:12]}"
    return None


def not_as_listed(path: str, size: int | None, sha256: str | None, git_oid: str | None) -> str | None:
    """Why the file at `path` is not the one listed (size, sha256 or blob id), or None."""
    read = functools.cache(lambda: digests(path))
    return why_not_listed(size, sha256, git_oid, os.path.getsize(path), lambda: read()[1], lambda: read()[2])


def bytes_not_as_listed(data: bytes, size: int | None, sha256: str | None, git_oid: str | None) -> str | None:
    """Why `data` are not the bytes of the file listed (size, sha256 or blob id), or None."""
    return why_not_listed(
        size,
        sha256,
        git_oid,
        len(data),
        lambda: hashlib.sha256(data).hexdigest(),
        lambda: hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
    )


def cached_not_as_listed(path: str, size: int, sha256: str | None, git_oid: str | None) -> str | None:
    """Why the cached copy at `path` is not the file listed, or None. The size comes from a stat;
    a sha256 from the hash cache (the copy is read again only when it changed since it was last
    hashed); a git blob id (a regular file, small) from a read."""
    try:
        got_size = os.stat(path).st_size
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"

    def cached_sha256() -> str:
        from hubpress.settings import get_settings

        return _hash_cache(get_settings().cache_dir).sha256_local(path)

    return why_not_listed(size, sha256, git_oid, got_size, cached_sha256, lambda: digests(path)[2])


@functools.lru_cache(maxsize=4)
def _hash_cache(cache_dir: str):
    """One hash cache per cache folder (it opens its database once per thread)."""
    from pathlib import Path

    from hubpress.storage.hashcache import HashCache

    return HashCache(Path(cache_dir) / "hashes.sqlite")


def remove_from_cache(path: str) -> None:
    """The snapshot entry and the blob it points to (through the repo's blob link, when the cache
    keeps blobs in a shared store): nothing of a refused file stays cached. Only what lies in the
    repo's cache folder or its blob store is removed: an entry another tool linked to a file of
    its own elsewhere loses the link, never that file."""
    roots = _cache_roots(path)
    chain = [path]
    with contextlib.suppress(OSError):
        while os.path.islink(chain[-1]) and len(chain) < 8:
            target = os.readlink(chain[-1])
            chain.append(os.path.join(os.path.dirname(chain[-1]), target))
    chain.append(os.path.realpath(path))
    for victim in chain:
        # Where the name itself is (its folder resolved): a link is judged by where it lies.
        where = os.path.join(os.path.realpath(os.path.dirname(victim)), os.path.basename(victim))
        if victim != path and not any(is_inside(where, root) for root in roots):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(victim)


_SNAPSHOT = re.compile(r"(?:models|datasets|spaces)--.+")
_COMMIT = re.compile(r"[0-9a-f]{40}")


def _cache_roots(path: str) -> list[str]:
    """The resolved folders of the cache holding a snapshot entry (`<cache>/<type>s--org--name/
    snapshots/<commit>/<file>`): the cache folder, and the repo's and the cache's blob stores
    (huggingface_hub's shared store, `<cache>/blobs`, or one either links to elsewhere); none
    for a path not laid out so."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(1, len(parts) - 2):
        if parts[i] == "snapshots" and _SNAPSHOT.fullmatch(parts[i - 1]) and _COMMIT.fullmatch(parts[i + 1]):
            repo = os.sep.join(parts[:i])
            cache = os.path.dirname(repo)
            folders = (cache, os.path.join(repo, "blobs"), os.path.join(cache, "blobs"))
            return [os.path.realpath(folder) for folder in folders]
    return []
