"""A local directory as a publishing target, holding exactly what the Hub repo would.

The directory the user names is a symlink to an immutable version directory kept beside it
(`.<name>.hubpress/versions/<id>`). A publish builds the next version completely, then swaps the
symlink with one rename, so a reader (or `datasets.load_dataset(DIR)`) sees the old or the new
version, never a mix. The two newest versions are kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path

from hubpress.errors import DiskError, PublishError, SourceError
from hubpress.shards.parquet_footer import ParquetFooter, read_footer
from hubpress.storage.files import check_takes_new_files
from hubpress.storage.hashcache import HashCache, sha256_file
from hubpress.storage.names import inside
from hubpress.targets import interrupted
from hubpress.targets.base import CommitConflict, CommitResult, RemoteState
from hubpress.targets.plan import PublishPlan, RemoteFile, StagedFile, commit_mismatches, git_blob_oid

KEEP_VERSIONS = 2


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kept_version_owner(path: Path) -> Path | None:
    """The target whose kept version `path` is (`D/.NAME.hubpress/versions/ID` -> `D/NAME`), else None.

    `cd out/face-seg` enters the target's current version through its symlink, and the working
    directory the process gets is the version itself: `publish-dataset SRC .` there made the
    version a target of its own, nested in the store, and left `out/face-seg` a link to a link."""
    home = path.parent.parent
    if path.parent.name != "versions" or not (home.name.startswith(".") and home.name.endswith(".hubpress")):
        return None
    owner = home.parent / home.name[1 : -len(".hubpress")]
    return owner if owner.name else None


class LocalDir:
    def __init__(self, path: str | Path, cache: HashCache | None = None):
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        owner = _kept_version_owner(self.path)
        if owner is not None:
            if not (owner.is_symlink() and Path(os.path.realpath(owner)).parent == self.path.parent):
                raise SourceError(
                    f"{self.path} is a version hubpress keeps for the local target {owner}, not a target: "
                    f"give {owner} itself."
                )
            self.path = owner  # the directory the person is in, as they named it
        self.home = self.path.parent / f".{self.path.name}.hubpress"
        self.versions = self.home / "versions"
        self.cache = cache or HashCache(None)
        self.description = f"local directory {self.path}"

    def check_write_access(self, pull_request: bool = False) -> None:
        """The target's folder takes new files: the versions go in `.NAME.hubpress/` beside the
        target and the target becomes a link to the newest, both written there. Asked before any
        work, as a Hub repo is asked whether the token may write it: a read-only or foreign folder
        was found only by the commit, after the whole build. `.NAME.hubpress/` and its folders,
        where they exist already (made by an earlier run, perhaps as another user), are asked too:
        a writable parent does not make them writable. Nothing is left behind."""
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # the publish creates the missing ones inside the nearest existing
        made_before = [d for d in (self.home, self.versions, self.home / "tags") if os.path.lexists(d)]
        for where in (folder, *made_before):
            try:
                check_takes_new_files(where)
            except OSError as exc:
                raise DiskError(
                    f"the local target {self.path} cannot be written: its folder {where} refuses new files "
                    f"({exc.strerror or exc}). Choose a target directory in a folder you can write, then "
                    "run again; nothing was built or sent."
                ) from None

    # -- reading -------------------------------------------------------------------------------

    def ensure_exists(self, private: bool) -> bool:
        self.versions.mkdir(parents=True, exist_ok=True)
        return False

    def _head(self) -> str | None:
        if self.path.is_symlink():
            resolved = Path(os.path.realpath(self.path))
            if resolved.parent == Path(os.path.realpath(self.versions)):
                # A version's id is its files' digest; one edited in place (through the link) is
                # another state, so a publish re-plans it rather than finding "nothing to do".
                if self._version_id(resolved, self._sha256_kept) != resolved.name:
                    return f"edited:{resolved.name}"
                return resolved.name
            return f"external:{resolved}"
        if self.path.is_dir():
            return "unmanaged"
        return None

    def _sha256_kept(self, path: Path) -> str:
        # hubpress's own immutable versions: each publish links them anew (the ctime moves)
        return self.cache.sha256_local(path, with_ctime=False)

    def head(self, revision: str) -> str | None:
        return self._head()

    def files_at(self, revision: str | None) -> Path:
        """The folder of `revision`'s files, for readers (download-lora, load_editing_dataset): the
        current ones for none or `main`, else the version a tag (or a version id) names while
        this target still keeps it; never the current files for a revision that is not theirs."""
        if revision in (None, "main"):
            return self.path
        version = self.tag_commit(revision) or revision
        folder = inside(self.versions, version, what="revision")
        if "/" in version or not folder.is_dir():
            raise SourceError(
                f"{self.description} has no revision {revision!r}: it keeps its {KEEP_VERSIONS} newest "
                "versions, named by their commit id or a tag; omit the revision for its current files."
            )
        return folder

    def state(self, revision: str) -> RemoteState:
        head = self._head()
        if head is None:
            return RemoteState(exists=False, head=None)
        files: dict[str, RemoteFile] = {}
        root = Path(os.path.realpath(self.path))
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".hubpress")]
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                # hubpress's own immutable versions: each publish links them anew (the ctime moves)
                sha = self.cache.sha256_local(full, with_ctime=False)
                files[rel] = RemoteFile(path=rel, size=os.path.getsize(full), sha256=sha)
        return RemoteState(exists=True, head=head, files=files)

    def read_text(self, path: str, revision: str, git_oid: str | None = None) -> str | None:
        """The file's text, held as the Hub's copy is (hubpress.targets.blob_texts): within the
        document limit and UTF-8, else one line (a card re-saved in Latin-1 by an editor)."""
        from hubpress.targets.blob_texts import too_large, utf8_text

        full = self.path / path
        try:
            size = full.stat().st_size
            if (refusal := too_large(path, self.description, size)) is not None:
                raise refusal
            return utf8_text(full.read_bytes(), path, self.description)
        except (FileNotFoundError, NotADirectoryError):
            return None

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def commit(
        self,
        plan: PublishPlan,
        files: dict[str, StagedFile],
        local_paths: Mapping[str, str],
        message: str,
        create_pr: bool = False,
    ) -> CommitResult:
        if create_pr:
            raise PublishError("--create-pr needs a Hub repo; a local directory has no pull requests.")
        with self._lock():
            head = self._head()
            if head != plan.parent_commit:
                raise CommitConflict(f"{self.path} moved from {plan.parent_commit} to {head}")
            interrupted.commit_sent(self)  # on Ctrl-C, the command says what state it is in
            self.versions.mkdir(parents=True, exist_ok=True)
            self._remove_dead_builds()
            current = Path(os.path.realpath(self.path)) if head is not None else None
            build = Path(tempfile.mkdtemp(prefix=".build-", dir=self.versions))
            os.chmod(build, 0o777 & ~_umask())  # mkdtemp makes 0700: readers of shared storage too
            try:
                touched = {c.path for c in plan.changes if c.kind in ("added", "changed", "deleted")}
                if current is not None:
                    self._carry_over(current, build, skip=touched)
                for change in plan.changes:
                    if change.kind in ("added", "changed"):
                        dest = inside(build, change.path, what="path in the repo")
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        # Read once, as it is copied: from S3 staging the copy is made now, and the
                        # one before it removed (hubpress.targets.send_ahead.CopiedWhenRead).
                        shutil.copyfile(local_paths[change.path], dest)
                        if sha256_file(dest) != files[change.path].sha256:
                            raise PublishError(f"{change.path} changed while it was copied into {self.path}.")
                version = self._version_id(build)
                final = self.versions / version
                if final.exists() and self._version_id(final, self._sha256_kept) == version:
                    shutil.rmtree(build)
                else:
                    if final.exists():  # that version, edited in place since: the new files replace it
                        os.rename(final, self._aside("edited"))
                    os.rename(build, final)
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            self._swap(final, head)
            interrupted.committed(self)
            self._prune(keep={version})
        return CommitResult(commit=version, url=self.commit_url(version))

    def _remove_dead_builds(self) -> None:
        """A version is built only under the target's lock, which this process holds: a `.build-*`
        folder here is what a killed commit left (SIGKILL, power loss), never one in progress."""
        for p in self.versions.iterdir():
            if p.name.startswith(".build-") and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)

    def _carry_over(self, current: Path, build: Path, skip: set[str]) -> None:
        """Unchanged files and files hubpress does not own come along into the new version.
        Hard links when possible: versions are immutable, so sharing inodes is safe and cheap."""
        for dirpath, _dirnames, filenames in os.walk(current):
            for name in filenames:
                src = Path(dirpath) / name
                rel = src.relative_to(current).as_posix()
                if rel in skip:
                    continue
                dest = build / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dest)
                except OSError:
                    shutil.copy2(src, dest)

    @staticmethod
    def _version_id(build: Path, sha256: Callable[[Path], str] = sha256_file) -> str:
        digest = hashlib.sha256()
        for path in sorted(p for p in build.rglob("*") if p.is_file()):
            digest.update(path.relative_to(build).as_posix().encode() + b"\0")
            digest.update(sha256(path).encode() + b"\n")
        return digest.hexdigest()[:40]

    def _swap(self, final: Path, head: str | None) -> None:
        if head == "unmanaged" or (head or "").startswith("external:"):
            # A plain directory (or foreign symlink) cannot be replaced by a rename: move it aside
            # into the versions store first. Its files were carried into the new version already.
            os.rename(self.path, self._aside("previous"))
        link = self.path.parent / f".{self.path.name}.{os.getpid()}.link"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(os.path.relpath(final, self.path.parent), link)
        os.replace(link, self.path)

    def _aside(self, kind: str) -> Path:
        """A new name in the versions store for a folder moved aside: never one in use. A name made
        of the pid collided with the one a previous repair in this process (or a crashed run whose
        pid came round again) left, and the rename failed on a folder that was not empty."""
        return self.versions / f"{kind}-{uuid.uuid4().hex}"

    def _prune(self, keep: set[str]) -> None:
        entries = [p for p in self.versions.iterdir() if p.is_dir() and not p.name.startswith(".build-")]
        entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        survivors = set(keep) | {p.name for p in entries[:KEEP_VERSIONS]}
        for p in entries:
            if p.name not in survivors:
                shutil.rmtree(p, ignore_errors=True)

    def tag_commit(self, tag: str) -> str | None:
        """The version `tag` points to, or None (asked before committing)."""
        marker = inside(self.home / "tags", tag, what="tag", follow_links=False)
        return marker.read_text().strip() if marker.is_file() else None

    def create_tag(self, commit: str, tag: str, message: str | None = None) -> None:
        """Create `tag` on version `commit` (hubpress.targets.publish.apply_tag decides whether to)."""
        marker = inside(self.home / "tags", tag, what="tag", follow_links=False)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(commit + "\n")

    def verify(self, commit: str, files: list[StagedFile]) -> list[str]:
        """Hash the committed version's copy of each file and compare it with the staged one."""
        root = self.versions / commit
        committed = {
            f.path: RemoteFile(
                path=f.path, size=(root / f.path).stat().st_size, sha256=sha256_file(root / f.path)
            )
            for f in files
            if (root / f.path).is_file()
        }
        return commit_mismatches(commit, files, committed)

    def parquet_footers(
        self,
        commit: str,
        paths: list[str],
        first_row_columns: Sequence[str] = (),
        first_row_of: Collection[str] = (),
    ) -> dict[str, ParquetFooter]:
        footers = {}
        for p in paths:
            with open(self.versions / commit / p, "rb") as fh:
                footers[p] = read_footer(fh, first_row_columns if p in first_row_of else ())
        return footers

    def commit_url(self, commit: str) -> str:
        return (self.versions / commit).as_uri()


def staged_text(path: str, text: str, directory: Path) -> tuple[StagedFile, str]:
    """Write a small generated text file (README.md, manifest.json) and describe it as staged."""
    data = text.encode("utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    local = directory / path.replace("/", "__")
    local.write_bytes(data)
    return (
        StagedFile(
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            source=str(local),
            git_oid=git_blob_oid(data),
        ),
        str(local),
    )


def refuse_staging_inside(staging: str, target: str) -> None:
    """A ConfigError (one line) when the local `staging` lies inside the local `target` (its link,
    the version it names, or its `.NAME.hubpress` folder of versions): what a run stages there
    would be published with it. The CLI's preflight and every flow that stages ask it."""
    from hubpress.errors import ConfigError
    from hubpress.targets.base import is_local_target, local_path

    if staging.startswith("s3://") or not is_local_target(target):
        return
    where = Path(os.path.realpath(Path(staging.removeprefix("file://")).expanduser()))
    named = Path(os.path.abspath(local_path(target)))
    for folder in {named, Path(os.path.realpath(named)), named.parent / f".{named.name}.hubpress"}:
        if where == folder or folder in where.parents:
            raise ConfigError(
                f"staging {staging!r} is inside the local target {target!r}: what a run stages there would "
                "be published with it. Choose a staging outside the target (--staging or HUBPRESS_STAGING)."
            )
