"""Sealed shards: every built shard kept in staging under its key, for any run to reuse.

A shard is a function of its plan (hubpress.shards.shards.ShardPlan.key: its samples' content
digests, the options that shape bytes and the shard format), so a shard built once never needs
building again. The build writes it to `<staging>/shards/<key[:2]>/<key>.parquet` (atomically:
a temporary name, then a rename; on S3 one PUT) and then seals it with `<key>.json`, written
LAST, holding its sha256, size and row counts (and, on S3, the object's ETag). A shard is sealed
when both are there and agree (size; locally the sha256 through the hash cache, on S3 the
ETag): a crash before the seal leaves nothing a later run trusts, and a sealed shard is reused
by every later run that plans the same key, on this machine or any other that sees the staging.

Two runs that build the same key write the same bytes, so sharing staging cannot corrupt a
shard. Which run may remove a sealed shard is decided by the runs' leases (hubpress.shards.runs).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hubpress.errors import SourceError
from hubpress.shards.parquet import BuiltShard
from hubpress.shards.staging import Staging, _is_missing
from hubpress.storage.files import ListedFile
from hubpress.targets.plan import StagedFile

log = logging.getLogger("hubpress.staging")

SHARDS = "shards"
SEAL_FORMAT = 1


def is_shard_key(value: object) -> bool:
    """A shard key is a sha256 hex digest: anything else a remote names is not looked up."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


@dataclass(frozen=True, slots=True)
class SealedShard:
    """What a sealed shard holds, without its bytes: enough for the manifest, the card and the
    publish plan. `source` is where its bytes are (a staging URI), or "" when only the target
    holds them (hubpress.shards.reuse.target_holdings)."""

    key: str
    path_in_repo: str
    split: str
    sha256: str
    size: int
    num_rows: int
    num_bytes: int
    source: str = ""

    def built(self) -> BuiltShard:
        return BuiltShard(
            self.path_in_repo, self.source, self.sha256, self.size, self.num_rows, self.split, self.num_bytes
        )

    def staged(self) -> StagedFile:
        return StagedFile(
            self.path_in_repo, self.sha256, self.size, self.source or f"target:{self.path_in_repo}"
        )


def parquet_relpath(key: str) -> str:
    return f"{SHARDS}/{key[:2]}/{key}.parquet"


def seal_relpath(key: str) -> str:
    return f"{SHARDS}/{key[:2]}/{key}.json"


@dataclass(frozen=True, slots=True)
class StoredShard:
    """One shard file in the store, as `hubpress staging list` shows it."""

    key: str
    size: int
    sealed: bool
    modified: float | None  # seconds since the epoch, when the storage says


class ShardStore:
    """The sealed shards of one staging location (local or S3)."""

    def __init__(self, staging: Staging):
        self.staging = staging
        self.storage = staging.storage

    def build_path(self, key: str) -> Path | None:
        """Where a shard is written in place (local staging); None on S3 (built in a temp dir)."""
        if not self.staging.is_local:
            return None
        return Path(self.storage.uri(parquet_relpath(key)))

    def seal(self, key: str, built: BuiltShard) -> SealedShard:
        """Put a built shard under its key (in place locally, uploaded to S3) and seal it."""
        relpath = parquet_relpath(key)
        target = self.build_path(key)
        if target is None:
            self.storage.put_file(relpath, built.local_path)
            landed = self.storage.size(relpath)
            if landed != built.size:
                raise SourceError(
                    f"Staging {built.path_in_repo} to {self.storage.uri(relpath)} left {landed} bytes "
                    f"instead of {built.size}; run the build again."
                )
        elif Path(built.local_path).resolve() != target.resolve():
            raise SourceError(f"{built.local_path} was not built in the shard store at {target}.")
        else:  # remember the hash of this file version: the next lookup need not read it
            from hubpress.storage.hashcache import local_version

            self.staging.hash_cache.put(os.path.abspath(target), *local_version(target), built.sha256)
        sealed = SealedShard(
            key,
            built.path_in_repo,
            built.split,
            built.sha256,
            built.size,
            built.num_rows,
            built.num_bytes,
            self.storage.uri(relpath),
        )
        record: dict[str, Any] = {"format": SEAL_FORMAT, **asdict(sealed), "sealed_at": time.time()}
        record.pop("source")
        if not self.staging.is_local:  # the ETag pins the bytes that were checked at sealing
            record["etag"] = self._listing(key).get(relpath, ListedFile(relpath, 0, None)).version
        self.storage.write_bytes(seal_relpath(key), json.dumps(record, indent=1).encode())
        return sealed

    def _listing(self, key: str) -> dict[str, ListedFile]:
        return {f.relpath: f for f in self.storage.list(f"{SHARDS}/{key[:2]}")}

    def find(self, keys: Iterable[str]) -> dict[str, SealedShard]:
        """The sealed, intact shards among `keys`. One listing of the store, then one small read
        per sealed key; a shard whose bytes differ from its seal is ignored (and rebuilt)."""
        wanted = {k for k in keys if is_shard_key(k)}
        if not wanted:
            return {}
        listing = {f.relpath: f for f in self.storage.list(SHARDS)}
        found: dict[str, SealedShard] = {}
        for key in sorted(wanted):
            if seal_relpath(key) not in listing or parquet_relpath(key) not in listing:
                continue
            sealed = self._check(key, listing[parquet_relpath(key)])
            if sealed is not None:
                found[key] = sealed
        return found

    def _check(self, key: str, stored: ListedFile) -> SealedShard | None:
        try:
            record = json.loads(self.storage.read_bytes(seal_relpath(key)))
            sealed = SealedShard(
                key=key,
                path_in_repo=str(record["path_in_repo"]),
                split=str(record["split"]),
                sha256=str(record["sha256"]),
                size=int(record["size"]),
                num_rows=int(record["num_rows"]),
                num_bytes=int(record["num_bytes"]),
                source=self.storage.uri(parquet_relpath(key)),
            )
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a missing object on S3, an unreadable seal
            if not _is_missing(exc):
                log.warning("Ignoring the sealed shard %s: its seal is unreadable (%s).", key[:16], exc)
            return None
        if record.get("key", key) != key or stored.size != sealed.size:
            log.warning(
                "Ignoring the sealed shard %s: its size differs from its seal; rebuilding it.", key[:16]
            )
            return None
        if self.staging.is_local:
            if self.staging.hash_cache.sha256_local(sealed.source) != sealed.sha256:
                log.warning("Ignoring the sealed shard %s: its sha256 differs from its seal.", key[:16])
                return None
        elif record.get("etag") is None or stored.version != record["etag"]:
            log.warning("Ignoring the sealed shard %s: it changed since it was sealed.", key[:16])
            return None
        return sealed

    def remove(self, keys: Iterable[str]) -> int:
        """Remove sealed shards (seal first, so a half-removed shard is never trusted). Returns
        the bytes freed."""
        freed = 0
        for key in keys:
            if not is_shard_key(key):
                continue
            for relpath in (seal_relpath(key), parquet_relpath(key)):
                freed += self._delete(relpath)
        return freed

    def _delete(self, relpath: str) -> int:
        size = 0
        if self.staging.is_local:
            path = Path(self.storage.uri(relpath))
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                return 0
            return size
        try:
            size = self.storage.size(relpath)
        except Exception as exc:  # noqa: BLE001
            if _is_missing(exc):
                return 0
            raise
        self.storage.delete(relpath)
        return size

    def entries(self) -> Iterator[StoredShard]:
        """Every shard file in the store, sealed or not (for `hubpress staging list` and the sweep)."""
        listing = {f.relpath: f for f in self.storage.list(SHARDS)}
        for relpath, listed in sorted(listing.items()):
            name = relpath.rsplit("/", 1)[-1]
            if not name.endswith(".parquet"):
                continue
            key = name.removesuffix(".parquet")
            if not is_shard_key(key):
                continue
            yield StoredShard(key, listed.size, seal_relpath(key) in listing, _modified(self, relpath))


def _modified(store: ShardStore, relpath: str) -> float | None:
    """When a shard was written: its mtime locally; on S3, the time its seal records, else (never
    sealed: its run died before the seal) the object's LastModified, so the policy's hour applies."""
    if store.staging.is_local:
        try:
            return os.stat(store.storage.uri(relpath)).st_mtime
        except OSError:
            return None
    try:
        key = relpath.rsplit("/", 1)[-1].removesuffix(".parquet")
        return float(json.loads(store.storage.read_bytes(seal_relpath(key)))["sealed_at"])
    except Exception:  # noqa: BLE001 - unsealed, or a seal without the time
        return store.storage.modified(relpath)
