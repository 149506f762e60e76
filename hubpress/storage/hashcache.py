"""A persistent cache of file facts (sha256 and validation results) keyed by what identifies a
version of a file without reading it: path, size, and mtime_ns, ctime_ns and inode locally, or ETag
on S3.

An unchanged multi-GB LoRA file or a 100,000-image tree is then never read twice. SQLite in WAL
mode lets several processes (validation workers) share it safely.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hubpress.errors import ConfigError
from hubpress.storage.regular import open_regular

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    uri TEXT NOT NULL,
    size INTEGER NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT,
    info TEXT,
    PRIMARY KEY (uri, size, version)
)
"""

CHUNK = 8 * 1024 * 1024


class CacheError(ConfigError):
    """The cache database cannot be used (its disk is full or read-only, or it is damaged)."""


@contextlib.contextmanager
def _sqlite_errors(path: Path | None) -> Iterator[None]:
    """SQLite's errors (\"database or disk is full\", \"attempt to write a readonly database\") as one
    line naming the cache and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise CacheError(
            f"The cache {path} cannot be used ({exc}): free space there, or point HUBPRESS_CACHE_DIR "
            "at a writable directory, then run again."
        ) from None


_UNPARSED: Any = object()
# What HashCache.rows_under gives for an entry whose info is the usual text it was given.
USUAL_INFO = 1


def parse_info(text: str) -> dict[str, Any] | None:
    """An entry's info, or None (no info: the file is read again) when its text is damaged."""
    try:
        info = json.loads(text)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def _prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) of the URIs that start with `prefix`: SQLite compares text by its UTF-8 bytes,
    whose order is that of the code points, so the bound is the prefix with its last character
    (a "/") moved one up."""
    if not prefix.endswith("/"):
        raise ValueError(f"a URI prefix ends with '/': {prefix!r}")
    return prefix, prefix[:-1] + "0"


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as fh:  # a /dev/zero link in a tree would be hashed forever
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stat_version(st: os.stat_result) -> str:
    """What says a local file's content may have changed, without reading it: the modification
    time and the inode change time (ctime), as git's index keeps them. A same-size edit that puts
    the old mtime back (`touch -d`, `os.utime`, a copy with `cp -p`) still moves the ctime, which
    user space cannot set. The one version rule of every local listing and cache key."""
    return f"{st.st_mtime_ns}+{st.st_ctime_ns}"


def stamp_version(mtime_ns: int, ctime_ns: int) -> str:
    """stat_version of a stat whose st_mtime_ns and st_ctime_ns these are (a columnar listing
    keeps the two numbers, hubpress.storage.listing)."""
    return f"{mtime_ns}+{ctime_ns}"


def local_version(path: str | os.PathLike[str], *, with_ctime: bool = True) -> tuple[int, str]:
    """(size, version) of a local file: version is `stat_version` and the inode, so an edited or
    replaced file misses. `with_ctime=False` is for files only hubpress writes and never edits
    (a local target's immutable versions), whose ctime moves each time a publish links them."""
    st = os.stat(path)
    stamp = stat_version(st) if with_ctime else str(st.st_mtime_ns)
    return st.st_size, f"{stamp}:{st.st_ino}"


class HashCache:
    def __init__(self, path: str | os.PathLike[str] | None):
        """`path=None` keeps nothing (every lookup misses)."""
        self.path = None if path is None else Path(path)
        self._local = threading.local()
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # HUBPRESS_HOME under a file, on a read-only disk, not ours
                raise CacheError(
                    f"The cache directory {self.path.parent} cannot be created ({exc.strerror or exc}): "
                    "point HUBPRESS_CACHE_DIR (or HUBPRESS_HOME) at a writable directory, then run again."
                ) from None
            with _sqlite_errors(self.path), self._conn() as conn:
                conn.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, uri: str, size: int, version: str) -> tuple[str | None, dict[str, Any] | None] | None:
        if self.path is None:
            return None
        with _sqlite_errors(self.path):
            return self._get(uri, size, version)

    def _get(self, uri: str, size: int, version: str) -> tuple[str | None, dict[str, Any] | None] | None:
        row = (
            self._conn()
            .execute(
                "SELECT sha256, info FROM facts WHERE uri=? AND size=? AND version=?", (uri, size, version)
            )
            .fetchone()
        )
        if row is None:
            return None
        return row[0], (parse_info(row[1]) if row[1] else None)

    def get_many(
        self, keys: list[tuple[str, int, str]]
    ) -> dict[tuple[str, int, str], tuple[str | None, dict | None]]:
        """Batch lookup, for validation chunks of thousands of files."""
        found: dict[tuple[str, int, str], tuple[str | None, dict | None]] = {}
        if self.path is None or not keys:
            return found
        with _sqlite_errors(self.path):
            return self._get_many(keys, found)

    def _get_many(self, keys, found):
        conn = self._conn()
        uris = sorted({k[0] for k in keys})
        wanted = set(keys)
        # Most files of a dataset share their facts but the sha256 (format, size, orientation):
        # each distinct text is parsed once, and the parsed dicts are shared (callers only read them).
        parsed: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(uris), 500):
            part = uris[start : start + 500]
            marks = ",".join("?" * len(part))
            for uri, size, version, sha, info in conn.execute(
                f"SELECT uri, size, version, sha256, info FROM facts WHERE uri IN ({marks})", part
            ):
                key = (uri, size, version)
                if key in wanted:
                    if info and info not in parsed:
                        parsed[info] = parse_info(info)
                    found[key] = (sha, parsed[info] if info else None)
        return found

    def count_under(self, prefix: str, at_most: int) -> int:
        """How many entries have a URI starting with `prefix` (which ends with "/"), counted up to
        `at_most`: a count of the key's index, bounded, so asking costs little even in a large cache."""
        if self.path is None:
            return 0
        with _sqlite_errors(self.path):
            sql = "SELECT count(*) FROM (SELECT 1 FROM facts WHERE uri >= ? AND uri < ? LIMIT ?)"
            return self._conn().execute(sql, (*_prefix_range(prefix), at_most)).fetchone()[0]

    def under(self, prefix: str) -> Iterator[tuple[str, int, str, str | None, dict[str, Any] | None]]:
        """Every entry whose URI starts with `prefix` (which ends with "/"): one range scan of the
        key's index, about a third of the cost per entry of get_many's lookups when a caller wants
        most of them (a night's validation of a whole tree). Each distinct info text is parsed
        once and the parsed dicts are shared, as get_many does: callers only read them. In no
        particular order (see rows_under)."""
        parsed: dict[str, dict[str, Any] | None] = {}
        usual = self.first_info_under(prefix)
        for rows in self.rows_under(prefix, usual):
            for uri, size, version, sha, info in rows:
                if info:
                    if info.__class__ is int:  # USUAL_INFO
                        info = usual
                    facts = parsed.get(info, _UNPARSED)
                    if facts is _UNPARSED:
                        facts = parsed[info] = parse_info(info)
                    yield uri, size, version, sha, facts
                else:
                    yield uri, size, version, sha, None

    def first_info_under(self, prefix: str) -> str | None:
        """The info text of the first entry under `prefix` in the key's order, if any: most entries
        of a dataset share one (format, size, no error), and this is likely to be it (rows_under)."""
        if self.path is None:
            return None
        with _sqlite_errors(self.path):
            sql = "SELECT info FROM facts WHERE uri >= ? AND uri < ? ORDER BY uri LIMIT 1"
            row = self._conn().execute(sql, _prefix_range(prefix)).fetchone()
        return row[0] if row is not None and isinstance(row[0], str) else None

    def rows_under(
        self, prefix: str, usual_info: str | None = None, batch: int = 4096
    ) -> Iterator[list[tuple[str, int, str, str | None, Any]]]:
        """`under`'s entries as the table holds them, a list of rows at a time, their info as its
        JSON text (parse_info reads it), or USUAL_INFO for an entry whose text is `usual_info`
        (compared by SQLite: most entries of a dataset share one, and a 200-byte string made and
        hashed per entry was a tenth of the scan). For a caller that reads two million of them and
        works each distinct text out once itself, without a generator step per entry (a night's
        validation). When the prefix holds most of the table, the table is read in its own order
        (no index lookup per entry: a quarter less per entry), else through the key's index."""
        if self.path is None:
            return
        with _sqlite_errors(self.path):
            conn = self._conn()
            bounds = _prefix_range(prefix)
            # max(rowid) bounds the table's size from above, from the table's b-tree alone.
            half = (conn.execute("SELECT max(rowid) FROM facts").fetchone()[0] or 0) // 2
            whole_table = self.count_under(prefix, half + 1) > half
            # The info column has TEXT affinity: an integer never comes back from it as one, so
            # USUAL_INFO cannot be mistaken for an entry's own info.
            sql = (
                "SELECT uri, size, version, sha256, CASE WHEN info = ? THEN ? ELSE info END"
                " FROM facts {} WHERE uri >= ? AND uri < ?"
            )
            rows = conn.execute(
                sql.format("NOT INDEXED" if whole_table else ""), (usual_info, USUAL_INFO, *bounds)
            )
            while chunk := rows.fetchmany(batch):
                yield chunk

    def forget(self, uri: str) -> None:
        """Drop what is kept of `uri` (every version): its next read establishes its facts anew."""
        if self.path is None:
            return
        with _sqlite_errors(self.path):
            self._conn().execute("DELETE FROM facts WHERE uri=?", (uri,))

    def put(
        self, uri: str, size: int, version: str, sha256: str | None, info: dict[str, Any] | None = None
    ) -> None:
        self.put_many([(uri, size, version, sha256, info)])

    def put_many(self, rows: list[tuple[str, int, str, str | None, dict[str, Any] | None]]) -> None:
        if self.path is None or not rows:
            return
        with _sqlite_errors(self.path):
            self._put_many(rows)

    def _put_many(self, rows: list[tuple[str, int, str, str | None, dict[str, Any] | None]]) -> None:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            # A new version of a file replaces the old row rather than piling up beside it.
            conn.executemany("DELETE FROM facts WHERE uri=?", [(r[0],) for r in rows])
            conn.executemany(
                "INSERT OR REPLACE INTO facts (uri, size, version, sha256, info) VALUES (?, ?, ?, ?, ?)",
                [
                    (u, s, v, h, json.dumps(i, sort_keys=True) if i is not None else None)
                    for u, s, v, h, i in rows
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def sha256_local(self, path: str | os.PathLike[str], *, with_ctime: bool = True) -> str:
        """sha256 of a local file, read only when its size, mtime, ctime or inode changed since."""
        path = os.path.abspath(path)
        size, version = local_version(path, with_ctime=with_ctime)
        hit = self.get(path, size, version)
        if hit is not None and hit[0]:
            return hit[0]
        sha = sha256_file(path)
        self.put(path, size, version, sha, hit[1] if hit else None)
        return sha
