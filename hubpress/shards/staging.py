"""The staging area: built shards, README.md and manifest.json, kept under the dataset's fingerprint.

A stage lives at `<staging>/<fingerprint>/` in a local directory or under an s3://bucket/prefix.
Every file is written atomically and checked (sha256 of what landed locally; size, plus the
checksum boto3 sends with every upload, on S3), and a completion record, `_complete.json`, listing
every file with its sha256 and size, is written LAST. `lookup` trusts a stage only when that
record exists and every file it lists is there with the right size (and, locally, the right
sha256, through the hash cache), so a crash mid-build never leaves a stage a later run would reuse.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hubpress.errors import SourceError
from hubpress.settings import Settings, get_settings
from hubpress.storage.files import ListedFile, LocalStorage, Storage, open_storage
from hubpress.storage.hashcache import HashCache, local_version, sha256_file
from hubpress.storage.names import inside
from hubpress.storage.scratch import scratch_dir
from hubpress.targets.plan import StagedFile, git_blob_oid

log = logging.getLogger("hubpress.staging")

# Temporary files of hubpress's own writers: a shard being written, an atomic write's temp name.
TEMP_SUFFIXES = (".parquet.tmp", ".tmp")
STALE_AFTER_SECONDS = 3600  # older than any write in progress: left by a run that crashed
_swept: set[str] = set()
_swept_lock = threading.Lock()


RELEASE_PREFIX = "release-"


def is_release_stage(name: str) -> bool:
    """`release-` and 32 hex digits (a release's fingerprint, hubpress.lora.publish): a user's own
    `release-2024/` in a shared folder is not one, and is never listed, swept or removed."""
    digest = name.removeprefix(RELEASE_PREFIX)
    return (
        name.startswith(RELEASE_PREFIX) and len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)
    )


def _own_folders(root: str) -> list[str]:
    """The folders hubpress writes in a staging location: the shard store, the runs' folders and
    the releases' stages. Whatever else the location holds (a `--staging .` project, a shared data
    folder) is the user's: never walked, never touched."""
    try:
        with os.scandir(root) as entries:
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return [os.path.join(root, n) for n in sorted(names) if n in ("shards", "runs") or is_release_stage(n)]


def sweep_stale_temp_files(root: str, max_age: float = STALE_AFTER_SECONDS) -> list[str]:
    """Remove temporary files a crashed run left in a local staging directory (once per process
    and directory), in hubpress's own folders there. Only hidden `*.tmp` files older than
    `max_age` go: a write in progress is never that old. Returns what was removed."""
    import time

    with _swept_lock:
        if root in _swept:
            return []
        _swept.add(root)
    removed: list[str] = []
    cutoff = time.time() - max_age
    for dirpath, _dirs, names in (walked for own in _own_folders(root) for walked in os.walk(own)):
        for name in names:
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIXES)):
                continue
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                continue
    if removed:
        log.warning("Removed %d temporary file(s) an earlier run left in %s", len(removed), root)
    return removed


COMPLETE_RECORD = "_complete.json"
# Staged beside the published files (card facts, shard plans) and never published.
PRIVATE_PREFIX = "_hubpress/"
RECORD_FORMAT = 1
# Regular (non-LFS) files get a git blob id so the plan can compare them with the Hub's oid.
SMALL_FILE_LIMIT = 10 * 1024**2


def json_bytes(value: Any) -> bytes:
    """A generated JSON file's bytes (manifest.json, card facts, index): indented, UTF-8, one final
    newline. Keys keep the order they were built in, so the same value gives the same bytes."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def published(files: Iterable[StagedFile]) -> list[StagedFile]:
    """The staged files a publish sends: all but hubpress's private ones."""
    return [f for f in files if not f.path.startswith(PRIVATE_PREFIX)]


# --- staging --------------------------------------------------------------------------------------


class Staging:
    """One staging location (`Settings.staging` by default): a local directory or s3://bucket/prefix."""

    def __init__(
        self,
        uri: str | None = None,
        settings: Settings | None = None,
        hash_cache: HashCache | None = None,
    ):
        self.settings = get_settings(settings)
        self.storage: Storage = open_storage(uri or self.settings.staging, self.settings, own=True)
        self.hash_cache = hash_cache or HashCache(Path(self.settings.cache_dir) / "hashes.sqlite")
        if isinstance(self.storage, LocalStorage):
            sweep_stale_temp_files(self.storage.root)

    @property
    def is_local(self) -> bool:
        return isinstance(self.storage, LocalStorage)

    def stage_uri(self, fingerprint: str, path: str = "") -> str:
        return self.storage.uri(f"{fingerprint}/{path}".rstrip("/"))

    def build_dir(self, fingerprint: str) -> Path | None:
        """Where shards can be written in place (local staging); None on S3 (build in a temp dir)."""
        if not self.is_local:
            return None
        return Path(self.stage_uri(fingerprint))

    # -- reading a stage ---------------------------------------------------------------------------

    def _read_record(self, fingerprint: str) -> dict[str, Any] | None:
        relpath = f"{fingerprint}/{COMPLETE_RECORD}"
        try:
            data = self.storage.read_bytes(relpath)
        except FileNotFoundError:
            return None
        except Exception as exc:  # botocore ClientError for a missing key
            if _is_missing(exc):
                return None
            raise
        try:
            record = json.loads(data)
        except ValueError:
            log.warning("Ignoring stage %s: its completion record is not JSON.", self.stage_uri(fingerprint))
            return None
        if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
            log.warning(
                "Ignoring stage %s: its completion record is for another stage.", self.stage_uri(fingerprint)
            )
            return None
        return record

    def _listing(self, fingerprint: str) -> dict[str, ListedFile]:
        strip = len(fingerprint) + 1
        return {f.relpath[strip:]: f for f in self.storage.list(fingerprint)}

    def _sizes(self, fingerprint: str) -> dict[str, int]:
        return {path: f.size for path, f in self._listing(fingerprint).items()}

    def lookup(self, fingerprint: str) -> list[StagedFile] | None:
        """The staged files of a complete, intact stage, or None (absent, unfinished or damaged)."""
        record = self._read_record(fingerprint)
        if record is None:
            return None
        listing = self._listing(fingerprint)
        sizes = {path: f.size for path, f in listing.items()}
        files: list[StagedFile] = []
        for entry in record.get("files", []):
            path, sha, size = entry["path"], entry["sha256"], entry["size"]
            # On S3 the ETag recorded at sealing stands in for the sha256: an object rewritten since
            # (same size or not) has another ETag, and a stage that was tampered with is rebuilt.
            etag = entry.get("etag")
            if etag is not None and path in listing and listing[path].version != etag:
                log.warning(
                    "Ignoring stage %s: %s changed since the stage was sealed; it will be rebuilt.",
                    self.stage_uri(fingerprint),
                    path,
                )
                return None
            if sizes.get(path) != size:
                log.warning(
                    "Ignoring stage %s: %s is %s (expected %d bytes); it will be rebuilt.",
                    self.stage_uri(fingerprint),
                    path,
                    "missing" if path not in sizes else f"{sizes[path]} bytes",
                    size,
                )
                return None
            source = self.stage_uri(fingerprint, path)
            if self.is_local and self.hash_cache.sha256_local(source) != sha:
                log.warning(
                    "Ignoring stage %s: %s does not match its recorded sha256; it will be rebuilt.",
                    self.stage_uri(fingerprint),
                    path,
                )
                return None
            files.append(
                StagedFile(path=path, sha256=sha, size=size, source=source, git_oid=entry.get("git_oid"))
            )
        return files

    # -- writing a stage ---------------------------------------------------------------------------

    def add_file(
        self,
        fingerprint: str,
        path_in_repo: str,
        local_path: str | os.PathLike[str],
        sha256: str | None = None,
    ) -> StagedFile:
        """Stage a local file (a built shard) at `path_in_repo`. `sha256` is what the file must hash
        to (computed from `local_path` when not given). Atomic; verified after it lands."""
        local_path = Path(local_path)
        size = local_path.stat().st_size
        expected = sha256 or sha256_file(local_path)
        relpath = f"{fingerprint}/{path_in_repo}"
        if isinstance(self.storage, LocalStorage):
            target = Path(self.storage.uri(relpath))
            # A shard built in place was hashed by write_shard before its rename: nothing to copy.
            if local_path.resolve() != target.resolve():
                _copy_verified(local_path, target, expected)
            # Remember the hash against this exact file version: the next lookup need not re-read it.
            self.hash_cache.put(os.path.abspath(target), *local_version(target), expected)
        else:
            self.storage.put_file(relpath, local_path)
            landed = self.storage.size(relpath)
            if landed != size:
                raise SourceError(
                    f"Staging {path_in_repo} to {self.storage.uri(relpath)} left {landed} bytes instead of "
                    f"{size}; run the build again."
                )
        git_oid = _git_oid_of(local_path, size)
        return StagedFile(path_in_repo, expected, size, self.storage.uri(relpath), git_oid)

    def add_bytes(self, fingerprint: str, path_in_repo: str, data: bytes) -> StagedFile:
        """Stage a small generated file (README.md, manifest.json); read back and checked."""
        relpath = f"{fingerprint}/{path_in_repo}"
        expected = hashlib.sha256(data).hexdigest()
        self.storage.write_bytes(relpath, data)
        if hashlib.sha256(self.storage.read_bytes(relpath)).hexdigest() != expected:
            raise SourceError(
                f"Staging {path_in_repo} to {self.storage.uri(relpath)} did not keep its bytes."
            )
        return StagedFile(path_in_repo, expected, len(data), self.storage.uri(relpath), git_blob_oid(data))

    def complete(self, fingerprint: str, files: Iterable[StagedFile]) -> list[StagedFile]:
        """Seal the stage: check every file is there at its size, then write the completion record."""
        files = sorted(files, key=lambda f: f.path)
        listing = self._listing(fingerprint)
        for f in files:
            if f.path not in listing or listing[f.path].size != f.size:
                raise SourceError(
                    f"Cannot seal stage {self.stage_uri(fingerprint)}: {f.path} is missing or has the wrong size."
                )

        def entry(f: StagedFile) -> dict[str, Any]:
            fields = {"path": f.path, "sha256": f.sha256, "size": f.size, "git_oid": f.git_oid}
            if not self.is_local:  # each file was checked when staged; its ETag pins those bytes
                fields["etag"] = listing[f.path].version
            return fields

        record = {
            "format": RECORD_FORMAT,
            "fingerprint": fingerprint,
            "files": [entry(f) for f in files],
        }
        self.storage.write_bytes(f"{fingerprint}/{COMPLETE_RECORD}", json.dumps(record, indent=1).encode())
        return files

    def seal(
        self, fingerprint: str, files: Iterable[StagedFile], generated: Mapping[str, bytes]
    ) -> list[StagedFile]:
        """Every build ends here: stage the generated files (manifest.json, the card's facts) beside
        the staged shards, seal the stage, and return what is to be published."""
        staged = list(files) + [self.add_bytes(fingerprint, path, data) for path, data in generated.items()]
        return published(self.complete(fingerprint, staged))

    def reopen(self, fingerprint: str, required: Iterable[str]) -> list[StagedFile] | None:
        """The files to publish from a complete, intact stage that holds every `required` path
        (the generated files a reuse reads back), or None: then the stage is built again."""
        files = self.lookup(fingerprint)
        if files is None:
            return None
        missing = set(required) - {f.path for f in files}
        if missing:
            log.warning(
                "Ignoring stage %s: it has no %s; it will be rebuilt.",
                self.stage_uri(fingerprint),
                ", ".join(sorted(missing)),
            )
            return None
        return published(files)

    def read_json(self, fingerprint: str, path: str) -> Any:
        return json.loads(self.storage.read_bytes(f"{fingerprint}/{path}"))

    def discard(self, fingerprint: str) -> None:
        """Remove a stage (completion record first, so a half-removed stage is never trusted)."""
        self.storage.delete(f"{fingerprint}/{COMPLETE_RECORD}")
        for f in list(self.storage.list(fingerprint)):
            self.storage.delete(f.relpath)
        if self.is_local:  # and its (now empty) folders, temporary files included
            shutil.rmtree(self.stage_uri(fingerprint), ignore_errors=True)

    # -- using a stage -----------------------------------------------------------------------------

    def local_copy(self, staged: StagedFile, directory: str | os.PathLike[str]) -> str:
        """A local path holding `staged`'s bytes: the staged file itself when staging is local, else
        a verified download into `directory`."""
        if not staged.source.startswith("s3://"):
            return staged.source
        relpath = self._relpath(staged.source)
        dest = inside(directory, staged.path, what="path in the repo")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.storage.get_file(relpath, dest)
        if sha256_file(dest) != staged.sha256:
            dest.unlink(missing_ok=True)
            # Unseal the damaged stage so the next run rebuilds it instead of failing here again.
            fingerprint = relpath.split("/", 1)[0]
            self.storage.delete(f"{fingerprint}/{COMPLETE_RECORD}")
            raise SourceError(
                f"{staged.source} does not match its recorded sha256; the stage was damaged and is "
                "unsealed: run again to rebuild it."
            )
        return str(dest)

    @contextmanager
    def local_paths(
        self, files: Iterable[StagedFile], only: Iterable[str] | None = None
    ) -> Iterator[dict[str, str]]:
        """{path in repo: local path}; S3 files are downloaded to a temporary directory
        (only the paths in `only`, when given) that is removed afterwards. For reading staged files
        (tests, tools); a publish copies one file at a time (hubpress.targets.send_ahead)."""
        wanted = set(only) if only is not None else None
        with scratch_dir("upload") as tmp:
            yield {f.path: self.local_copy(f, tmp) for f in files if wanted is None or f.path in wanted}

    def _relpath(self, uri: str) -> str:
        root = self.storage.root.rstrip("/") + "/"
        if not uri.startswith(root):
            raise SourceError(f"{uri} is not in the staging area {self.storage.root}.")
        return uri[len(root) :]


# --- helpers --------------------------------------------------------------------------------------


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in {
        "404",
        "NoSuchKey",
        "NotFound",
    }


def _copy_verified(source: Path, target: Path, expected_sha256: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        if sha256_file(tmp) != expected_sha256:
            raise SourceError(f"{source} changed while it was staged to {target}; build again.")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _git_oid_of(path: Path, size: int) -> str | None:
    if size > SMALL_FILE_LIMIT or path.suffix == ".parquet":
        return None
    return git_blob_oid(path.read_bytes())
