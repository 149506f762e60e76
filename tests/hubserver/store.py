"""Repositories on disk: one bare git repository per Hub repo, plus its LFS objects and metadata.

Layout under the data directory::

    {type}s/{namespace}/{name}/          a bare git repo (HEAD, objects/, refs/heads|tags|pr)
        hub.json                          owner, private flag, creation time
        lfs/objects/ab/cd/<sha256>        LFS content, as git-lfs lays it out
        lfs/incoming/                     uploads in progress (basic and multipart parts)

Everything the server knows is on disk, so a server restarted on the same directory serves the same
repos. Objects are immutable and written before the ref that points at them; refs are replaced
atomically; a lock per repo serialises commits and ref changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    Forbidden,
    PreconditionFailed,
    RepoNotFound,
    RevisionNotFound,
    Unprocessable,
)
from .gitobjects import (
    SHA1_RE,
    SHA256_RE,
    Commit,
    LfsPointer,
    build_trees,
    decode_commit,
    decode_tree,
    object_id,
    parse_lfs_pointer,
)

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub sends files above 10 MB through LFS
_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")
_REF_NAME_RE = re.compile(r"\A(?!.*\.\.)(?!/)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<!/)\Z")

_LFS_PATTERNS = [
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
    "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
]  # fmt: skip
_DATASET_LFS_PATTERNS = [
    "*.lz4", "*.mds", "*.mp3", "*.ogg", "*.wav", "*.bmp", "*.gif", "*.png", "*.tiff", "*.jpg",
    "*.jpeg", "*.webp", "*.mp4", "*.webm",
]  # fmt: skip


def default_gitattributes(repo_type: str) -> bytes:
    """The .gitattributes the Hub puts in a new repo's initial commit."""
    patterns = _LFS_PATTERNS + (_DATASET_LFS_PATTERNS if repo_type == "dataset" else [])
    return "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in patterns).encode()


def lfs_patterns(gitattributes: bytes) -> list[str]:
    """Path patterns a .gitattributes file routes through LFS (lines carrying filter=lfs)."""
    patterns = []
    for line in gitattributes.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def matches_pattern(path: str, pattern: str) -> bool:
    """git's rule, simplified: a pattern without '/' matches the file name, one with '/' the path."""
    if "/" in pattern.strip("/"):
        return fnmatch.fnmatchcase(path, pattern.lstrip("/").replace("**/", "*"))
    return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)


def is_binary_sample(sample: bytes) -> bool:
    """The Hub's test on the first 512 bytes: a NUL byte, or bytes that are not UTF-8, mean binary."""
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the 512-byte sample is still text
        return exc.start < len(sample) - 3
    return False


def decide_upload_mode(path: str, size: int, sample: bytes, patterns: list[str]) -> Literal["lfs", "regular"]:
    if size > LFS_SIZE_THRESHOLD or is_binary_sample(sample):
        return "lfs"
    if any(matches_pattern(path, p) for p in patterns):
        return "lfs"
    return "regular"


def validate_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise BadRequest(f"Invalid path in repo: {path!r}")
    return path


def validate_ref_name(name: str) -> str:
    if not _REF_NAME_RE.match(name) or name.startswith("refs/") or name.endswith(".lock"):
        raise BadRequest(f"Invalid reference name: {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class RepoMeta:
    repo_type: str
    repo_id: str
    owner: str
    private: bool
    created_at: float

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the API reports about a file: its git blob id and, for LFS files, the pointer's content."""

    path: str
    oid: str
    size: int
    lfs: LfsPointer | None
    pointer_size: int | None


@dataclass(slots=True)
class Snapshot:
    """A commit's tree, flattened: file path -> blob id, directory path -> tree id ('' is the root)."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)


# Operations a commit applies, in order (the NDJSON lines of the commit endpoint).
@dataclass(frozen=True, slots=True)
class AddFile:
    path: str
    content: bytes


@dataclass(frozen=True, slots=True)
class AddLfsFile:
    path: str
    oid: str
    size: int | None


@dataclass(frozen=True, slots=True)
class DeleteFile:
    path: str


@dataclass(frozen=True, slots=True)
class DeleteFolder:
    path: str


@dataclass(frozen=True, slots=True)
class CopyFile:
    path: str
    src_path: str
    src_revision: str | None


Operation = AddFile | AddLfsFile | DeleteFile | DeleteFolder | CopyFile


@dataclass(frozen=True, slots=True)
class CommitResult:
    oid: str
    ref: str  # full ref the commit landed on
    pr_num: int | None


@dataclass(frozen=True, slots=True)
class Ref:
    name: str  # short name: "main", "v1", "refs/pr/1" for PRs
    ref: str  # full ref: "refs/heads/main"
    target: str


class _LRU:
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Repo:
    """One Hub repository on disk."""

    def __init__(self, root: Path, meta: RepoMeta, lock: threading.RLock, caches: RepoCaches) -> None:
        self.root = root
        self.meta = meta
        self.lock = lock
        self._caches = caches

    # ---- objects ------------------------------------------------------------------------------
    def _object_path(self, oid: str) -> Path:
        return self.root / "objects" / oid[:2] / oid[2:]

    def write_object(self, kind: str, body: bytes) -> str:
        oid = object_id(kind, body)
        path = self._object_path(oid)
        if not path.exists():
            _write_atomic(path, zlib.compress(b"%s %d\0" % (kind.encode(), len(body)) + body, 1))
        return oid

    def read_object(self, oid: str) -> tuple[str, bytes]:
        cached = self._caches.objects.get((self.root, oid))
        if cached is not None:
            return cached
        try:
            raw = zlib.decompress(self._object_path(oid).read_bytes())
        except FileNotFoundError:
            raise KeyError(oid) from None
        header, _, body = raw.partition(b"\0")
        kind = header.split(b" ", 1)[0].decode()
        if kind != "blob" or len(body) < 4096:
            self._caches.objects.put((self.root, oid), (kind, body))
        return kind, body

    def has_commit(self, oid: str) -> bool:
        try:
            return self.read_object(oid)[0] == "commit"
        except KeyError:
            return False

    def commit(self, oid: str) -> Commit:
        kind, body = self.read_object(oid)
        if kind != "commit":
            raise RevisionNotFound(f"{oid} is not a commit")
        return decode_commit(body)

    def blob(self, oid: str) -> bytes:
        return self.read_object(oid)[1]

    def snapshot(self, commit_oid: str) -> Snapshot:
        key = (self.root, "snapshot", commit_oid)
        cached = self._caches.snapshots.get(key)
        if cached is not None:
            return cached
        snap = Snapshot()
        stack = [("", self.commit(commit_oid).tree)]
        while stack:
            prefix, tree_oid = stack.pop()
            snap.dirs[prefix] = tree_oid
            for entry in decode_tree(self.read_object(tree_oid)[1]):
                path = f"{prefix}/{entry.name}" if prefix else entry.name
                if entry.is_tree:
                    stack.append((path, entry.oid))
                else:
                    snap.files[path] = entry.oid
        self._caches.snapshots.put(key, snap)
        return snap

    def file_info(self, path: str, oid: str) -> FileInfo:
        key = (self.root, "blobinfo", oid)
        cached = self._caches.objects.get(key)
        if cached is None:
            data = self.blob(oid)
            pointer = parse_lfs_pointer(data)
            cached = (len(data), pointer)
            self._caches.objects.put(key, cached)
        blob_size, pointer = cached
        if pointer is not None:
            return FileInfo(path=path, oid=oid, size=pointer.size, lfs=pointer, pointer_size=blob_size)
        return FileInfo(path=path, oid=oid, size=blob_size, lfs=None, pointer_size=None)

    # ---- refs ---------------------------------------------------------------------------------
    def _ref_path(self, full_ref: str) -> Path:
        return self.root / full_ref

    def read_ref(self, full_ref: str) -> str | None:
        try:
            return self._ref_path(full_ref).read_text().strip() or None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def write_ref(self, full_ref: str, oid: str) -> None:
        _write_atomic(self._ref_path(full_ref), oid.encode() + b"\n")

    def delete_ref(self, full_ref: str) -> None:
        path = self._ref_path(full_ref)
        path.unlink()
        # drop emptied directories of slashed names, so "a" can become a branch after "a/b" is gone
        parent = path.parent
        while parent.name not in ("heads", "tags", "pr") and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def refs(self, kind: Literal["heads", "tags", "pr"]) -> list[Ref]:
        base = self.root / "refs" / kind
        out = []
        for path in sorted(base.rglob("*")) if base.exists() else []:
            if path.is_file() and not path.name.startswith(".tmp-"):
                rel = path.relative_to(base).as_posix()
                full = f"refs/{kind}/{rel}"
                out.append(Ref(name=full if kind == "pr" else rel, ref=full, target=path.read_text().strip()))
        return out

    def resolve(self, revision: str) -> tuple[str, str | None]:
        """The commit a revision names, and the full ref when it names a ref (None for a sha)."""
        if revision.startswith("refs/"):
            oid = self.read_ref(revision)
            if oid is not None and revision.split("/")[1] in ("heads", "tags", "pr"):
                return oid, revision
            raise RevisionNotFound(f"Invalid rev id: {revision}")
        for full in (f"refs/heads/{revision}", f"refs/tags/{revision}"):
            oid = self.read_ref(full)
            if oid is not None:
                return oid, full
        if SHA1_RE.match(revision) and self.has_commit(revision):
            return revision, None
        raise RevisionNotFound(f"Invalid rev id: {revision}")

    def branch_ref(self, revision: str) -> str:
        """The full ref a commit to `revision` moves: a branch or a PR ref, never a tag or a sha."""
        full = revision if revision.startswith("refs/") else f"refs/heads/{revision}"
        if (full.startswith("refs/heads/") or full.startswith("refs/pr/")) and self.read_ref(
            full
        ) is not None:
            return full
        raise RevisionNotFound(f"Invalid rev id: {revision} is not a branch of {self.meta.repo_id}")

    def history(self, commit_oid: str) -> Iterator[tuple[str, Commit]]:
        """First-parent history, newest first."""
        oid: str | None = commit_oid
        while oid is not None:
            commit = self.commit(oid)
            yield oid, commit
            oid = commit.parents[0] if commit.parents else None

    def last_commit(self, commit_oid: str, path: str) -> tuple[str, Commit]:
        """The newest commit at or before `commit_oid` that changed `path` (file or directory)."""

        def oid_at(snap: Snapshot) -> str | None:
            return snap.files.get(path) or snap.dirs.get(path)

        oid, commit = commit_oid, self.commit(commit_oid)
        current = oid_at(self.snapshot(oid))
        while commit.parents:
            parent = commit.parents[0]
            if oid_at(self.snapshot(parent)) != current:
                break
            oid, commit = parent, self.commit(parent)
        return oid, commit

    # ---- LFS ----------------------------------------------------------------------------------
    def lfs_path(self, oid: str) -> Path:
        return self.root / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    def lfs_size(self, oid: str) -> int | None:
        try:
            return self.lfs_path(oid).stat().st_size
        except FileNotFoundError:
            return None

    def lfs_incoming(self) -> Path:
        path = self.root / "lfs" / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def lfs_parts_dir(self, oid: str) -> Path:
        return self.lfs_incoming() / f"parts-{oid}"

    def lfs_ingest(self, tmp: Path, oid: str, size: int | None, sha256: str | None = None) -> None:
        """Move an uploaded file into the LFS store after checking its sha256 (and size).
        `sha256`: the file's digest when the caller computed it while writing the file."""
        actual = tmp.stat().st_size
        if sha256 is None:
            digest = hashlib.sha256()
            with open(tmp, "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    digest.update(chunk)
            sha256 = digest.hexdigest()
        if sha256 != oid or (size is not None and actual != size):
            tmp.unlink(missing_ok=True)
            raise BadRequest(
                f"Uploaded content does not match the LFS object: expected sha256 {oid} and size {size}, "
                f"got {sha256} and {actual}"
            )
        target = self.lfs_path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)

    def read_lfs(self, oid: str) -> Path:
        path = self.lfs_path(oid)
        if not path.exists():
            raise Unprocessable(f"LFS object {oid} is missing from the repo's storage")
        return path

    # ---- upload-mode decisions ----------------------------------------------------------------
    def lfs_patterns_at(self, commit_oid: str) -> list[str]:
        snap = self.snapshot(commit_oid)
        attributes = snap.files.get(".gitattributes")
        return lfs_patterns(self.blob(attributes)) if attributes else []

    # ---- commits ------------------------------------------------------------------------------
    def _apply(self, base: str, operations: list[Operation]) -> tuple[dict[str, str], int]:
        """Apply operations to the files of commit `base`; returns the new {path: blob id} map and
        the number of payload bytes carried inline."""
        files = dict(self.snapshot(base).files)
        inline_bytes = 0
        for op in operations:
            if isinstance(op, AddFile):
                files[validate_path(op.path)] = self.write_object("blob", op.content)
                inline_bytes += len(op.content)
            elif isinstance(op, AddLfsFile):
                if not SHA256_RE.match(op.oid):
                    raise BadRequest(f"Invalid LFS oid for {op.path}: {op.oid!r}")
                stored = self.lfs_size(op.oid)
                if stored is None:
                    raise Unprocessable(
                        f"LFS object {op.oid} for {op.path} was not uploaded: call the LFS batch API first"
                    )
                if op.size is not None and op.size != stored:
                    raise BadRequest(f"LFS object {op.oid} has size {stored}, not {op.size}")
                pointer = LfsPointer(oid=op.oid, size=stored).encode()
                files[validate_path(op.path)] = self.write_object("blob", pointer)
            elif isinstance(op, DeleteFile):
                if op.path not in files:
                    raise EntryNotFound(f"A file with this name doesn't exist: {op.path}")
                del files[op.path]
            elif isinstance(op, DeleteFolder):
                prefix = op.path.strip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)] if prefix != "/" else list(files)
                if not doomed:
                    raise EntryNotFound(f"A folder with this name doesn't exist: {op.path}")
                for path in doomed:
                    del files[path]
            elif isinstance(op, CopyFile):
                source = files
                if op.src_revision:
                    source = self.snapshot(self.resolve(op.src_revision)[0]).files
                if op.src_path not in source:
                    raise EntryNotFound(f"Cannot copy {op.src_path}: no such file")
                files[validate_path(op.path)] = source[op.src_path]
        for path in files:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                if "/".join(parts[:depth]) in files:
                    raise BadRequest(f"{path} cannot be added: {'/'.join(parts[:depth])} is a file")
        return files, inline_bytes

    def create_commit(
        self,
        revision: str,
        operations: list[Operation],
        *,
        author: str,
        title: str,
        message: str,
        parent_commit: str | None,
        create_pr: bool,
    ) -> tuple[CommitResult, int]:
        """Commit `operations` on top of branch `revision` (or of a new refs/pr/N when create_pr)."""
        with self.lock:
            pr_num = None
            if create_pr:
                base = parent_commit or self.resolve(revision)[0]
                if not self.has_commit(base):
                    raise PreconditionFailed(f"Parent commit {base} does not exist")
                numbers = [int(r.ref.rsplit("/", 1)[1]) for r in self.refs("pr")]
                pr_num = max(numbers, default=0) + 1
                ref = f"refs/pr/{pr_num}"
            else:
                ref = self.branch_ref(revision)
                base = self.read_ref(ref)
                assert base is not None
                if parent_commit is not None and parent_commit != base:
                    raise PreconditionFailed(
                        f"The parent commit {parent_commit} is not the head of {revision} ({base}): "
                        "someone committed in between. Fetch the new head and retry."
                    )
            files, inline_bytes = self._apply(base, operations)
            tree, trees = build_trees(files)
            for body in trees.values():
                self.write_object("tree", body)
            commit = Commit(
                tree=tree,
                parents=(base,),
                author=author,
                timestamp=int(time.time()),
                title=title,
                message=message,
            )
            oid = self.write_object("commit", commit.encode())
            self.write_ref(ref, oid)
            return CommitResult(oid=oid, ref=ref, pr_num=pr_num), inline_bytes

    def create_branch(self, branch: str, starting_point: str | None) -> str:
        validate_ref_name(branch)
        with self.lock:
            full = f"refs/heads/{branch}"
            if self.read_ref(full) is not None or (self.root / full).is_dir():
                raise Conflict(f"Reference already exists: {full}")
            oid = self.resolve(starting_point or "main")[0]
            self._write_new_ref(full, oid)
            return oid

    def delete_branch(self, branch: str) -> None:
        with self.lock:
            full = f"refs/heads/{branch}"
            if branch == "main":
                raise Forbidden("Cannot delete the default branch main")
            if self.read_ref(full) is None:
                raise RevisionNotFound(f"Invalid rev id: {branch}")
            self.delete_ref(full)

    def create_tag(self, tag: str, revision: str) -> str:
        validate_ref_name(tag)
        with self.lock:
            full = f"refs/tags/{tag}"
            if self.read_ref(full) is not None or (self.root / full).is_dir():
                raise Conflict(f"Tag already exists: {tag}")
            oid = self.resolve(revision)[0]
            self._write_new_ref(full, oid)
            return oid

    def _write_new_ref(self, full_ref: str, oid: str) -> None:
        try:
            self.write_ref(full_ref, oid)
        except (NotADirectoryError, FileExistsError):
            # like git: "a/b" cannot exist next to a ref named "a"
            raise Conflict(f"Reference {full_ref} conflicts with an existing reference") from None

    def delete_tag(self, tag: str) -> None:
        with self.lock:
            full = f"refs/tags/{tag}"
            if self.read_ref(full) is None:
                raise RevisionNotFound(f"Invalid rev id: {tag}")
            self.delete_ref(full)

    def set_private(self, private: bool, store: Store) -> None:
        with self.lock:
            self.meta = RepoMeta(**{**_meta_dict(self.meta), "private": private})
            store._write_meta(self.root, self.meta)


def _meta_dict(meta: RepoMeta) -> dict:
    return {
        "repo_type": meta.repo_type,
        "repo_id": meta.repo_id,
        "owner": meta.owner,
        "private": meta.private,
        "created_at": meta.created_at,
    }


class RepoCaches:
    def __init__(self) -> None:
        self.objects = _LRU(20000)
        self.snapshots = _LRU(256)


class Store:
    """All repos under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._repo_locks: dict[tuple[str, str], threading.RLock] = {}
        self._caches = RepoCaches()

    def _root(self, repo_type: str, repo_id: str) -> Path:
        namespace, _, name = repo_id.partition("/")
        if repo_type not in REPO_TYPES or not _NAME_RE.match(namespace) or not _NAME_RE.match(name):
            raise RepoNotFound(f"Repository Not Found: {repo_type} {repo_id}")
        return self.data_dir / f"{repo_type}s" / namespace / name

    def _repo_lock(self, repo_type: str, repo_id: str) -> threading.RLock:
        with self._lock:
            return self._repo_locks.setdefault((repo_type, repo_id), threading.RLock())

    def _write_meta(self, root: Path, meta: RepoMeta) -> None:
        _write_atomic(root / "hub.json", json.dumps(_meta_dict(meta), indent=1).encode())

    def get(self, repo_type: str, repo_id: str) -> Repo:
        root = self._root(repo_type, repo_id)
        try:
            meta = RepoMeta(**json.loads((root / "hub.json").read_text()))
        except FileNotFoundError:
            raise RepoNotFound(f"Repository Not Found: {repo_type} {repo_id}") from None
        return Repo(root, meta, self._repo_lock(repo_type, repo_id), self._caches)

    def find(self, repo_type: str, repo_id: str) -> Repo | None:
        try:
            return self.get(repo_type, repo_id)
        except RepoNotFound:
            return None

    def create(self, repo_type: str, repo_id: str, owner: str, private: bool) -> Repo:
        namespace, _, name = repo_id.partition("/")
        if repo_type not in REPO_TYPES:
            raise BadRequest(f"Invalid repo type: {repo_type}")
        if not _NAME_RE.match(namespace) or not _NAME_RE.match(name):
            raise BadRequest(f"Invalid repo name: {repo_id!r}")
        root = self._root(repo_type, repo_id)
        with self._repo_lock(repo_type, repo_id):
            if (root / "hub.json").exists():
                raise Conflict("You already created this repo")
            # build the repo aside and rename it into place, so a half-made repo is never visible
            staging = root.parent / f".creating-{name}-{uuid.uuid4().hex[:8]}"
            for sub in ("objects", "refs/heads", "refs/tags", "refs/pr", "lfs/objects"):
                (staging / sub).mkdir(parents=True)
            (staging / "HEAD").write_text("ref: refs/heads/main\n")
            (staging / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
            meta = RepoMeta(repo_type, repo_id, owner, private, time.time())
            repo = Repo(staging, meta, self._repo_lock(repo_type, repo_id), self._caches)
            blob = repo.write_object("blob", default_gitattributes(repo_type))
            tree, trees = build_trees({".gitattributes": blob})
            for body in trees.values():
                repo.write_object("tree", body)
            initial = Commit(tree, (), "system", int(time.time()), "initial commit", "")
            repo.write_ref("refs/heads/main", repo.write_object("commit", initial.encode()))
            self._write_meta(staging, meta)
            if root.exists():  # leftovers of a deleted repo
                shutil.rmtree(root)
            os.replace(staging, root)
        return self.get(repo_type, repo_id)

    def delete(self, repo_type: str, repo_id: str) -> None:
        root = self._root(repo_type, repo_id)
        with self._repo_lock(repo_type, repo_id):
            if not (root / "hub.json").exists():
                raise RepoNotFound(f"Repository Not Found: {repo_type} {repo_id}")
            trash = root.parent / f".deleted-{root.name}-{uuid.uuid4().hex[:8]}"
            os.replace(root, trash)
        shutil.rmtree(trash, ignore_errors=True)
