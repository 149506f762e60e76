"""Every conversation with the Hugging Face Hub goes through this module.

It speaks through huggingface_hub's HfApi (never raw HTTP) and turns what the Hub answers into
hubpress's typed values (RemoteState, RemoteFile, CommitResult) and errors a person can act on.
Transient failures (429, 5xx, dropped connections) are retried here with exponential backoff and
jitter; auth failures (401/403) never are.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from hubpress.build.parquet_footer import ParquetFooter, read_footer
from hubpress.errors import HubAccessError, HubpressError, PublishError
from hubpress.settings import ResolvedToken, Settings
from hubpress.targets.base import CommitConflict, CommitResult, RemoteState, RepoType
from hubpress.targets.plan import PublishPlan, RemoteFile, StagedFile, git_blob_oid

log = logging.getLogger("hubpress.hub")

T = TypeVar("T")

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class RepoNotFound(HubpressError):
    pass


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: rate limits, server errors, dropped or stalled connections."""
    status = _status(exc)
    if status is not None:
        return status in TRANSIENT_STATUS
    name = type(exc).__name__
    return isinstance(exc, (ConnectionError, TimeoutError)) or any(
        part in name
        for part in ("Connect", "Timeout", "RemoteProtocol", "ReadError", "WriteError", "NetworkError")
    )


def retry_transient(
    action: str,
    fn: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay: float = 0.5,
    max_total: float = 120.0,
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Call fn, retrying transient failures with exponential backoff and full jitter, bounded in
    attempts and total time. A Retry-After header, when present, is honoured."""
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or attempt == attempts:
                raise
            retry_after = None
            response = getattr(exc, "response", None)
            if response is not None:
                with contextlib.suppress(TypeError, ValueError):
                    retry_after = float(response.headers.get("Retry-After"))
            delay = (
                retry_after if retry_after is not None else random.uniform(0, base_delay * 2 ** (attempt - 1))
            )
            if time.monotonic() - started + delay > max_total:
                raise
            status = _status(exc)
            what = (
                "rate-limited (429)"
                if status == 429
                else f"transient failure ({status or type(exc).__name__})"
            )
            message = f"{action}: {what}; retrying in {delay:.1f}s (attempt {attempt + 1}/{attempts})"
            log.warning(message)
            if on_retry:
                on_retry(message)
            time.sleep(delay)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def hub_errors(action: str, where: str, token: ResolvedToken) -> Iterator[None]:
    """Turn the Hub's auth and not-found answers into hubpress errors that say what to do."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        yield
    except RevisionNotFoundError:
        raise
    except RepositoryNotFoundError as exc:
        if _status(exc) == 401 and token.value is not None:
            raise HubAccessError(
                f"The Hub refused the token from {token.source} (HTTP 401) while trying to {action} {where}: "
                "the token is invalid or expired. Create a new one at <endpoint>/settings/tokens."
            ) from None
        raise RepoNotFound(
            f"{where} does not exist or is not visible with the token from {token.source}. "
            "Check the name, or use a token that can read it."
        ) from None
    except HfHubHTTPError as exc:
        status = _status(exc)
        if status == 401:
            hint = "provide a write token" if token.value is None else "the token is invalid or expired"
            raise HubAccessError(
                f"The Hub refused the request to {action} {where} (HTTP 401, token from {token.source}): {hint}."
            ) from None
        if status == 403:
            raise HubAccessError(
                f"The Hub forbade the request to {action} {where} (HTTP 403, token from {token.source}): "
                "the token cannot write there. Use a token with write access to that namespace."
            ) from None
        raise


class BlobTexts:
    """Small files by their git blob id (content-addressed: an entry is right forever). A copy
    whose bytes no longer hash to its id is ignored."""

    def __init__(self, root: str):
        self.root = root

    def _path(self, oid: str) -> str:
        import os

        return os.path.join(self.root, oid[:2], oid)

    def get(self, oid: str) -> str | None:
        try:
            with open(self._path(oid), "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        return data.decode("utf-8", errors="replace") if git_blob_oid(data) == oid else None

    def put(self, data: bytes) -> None:
        import os
        import tempfile

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


def _addition(file: StagedFile, local_path: str):
    from huggingface_hub import CommitOperationAdd

    op = CommitOperationAdd(path_in_repo=file.path, path_or_fileobj=local_path)
    # huggingface_hub hashes lazily; we hashed while staging, so it need not read every shard
    # again. The Hub checks it on upload and `verify` compares it after the commit.
    op.upload_info.sha256 = bytes.fromhex(file.sha256)
    return op


class HubRepo:
    """A Hub repo as a publishing target."""

    def __init__(self, repo_id: str, repo_type: RepoType, settings: Settings, token: ResolvedToken):
        from huggingface_hub import HfApi

        self.repo_id = repo_id
        self.repo_type = repo_type
        self.settings = settings
        self.token = token
        self.endpoint = settings.endpoint()
        # token=False stops huggingface_hub from picking up a token we did not resolve ourselves.
        self.api = HfApi(endpoint=self.endpoint, token=token.value if token.value else False)
        self.description = f"{repo_type} repo {repo_id}"
        self.retry_messages: list[str] = []
        # Operations sent ahead by preupload(), by (path, sha256): the commit reuses these objects,
        # which carry huggingface_hub's record that they are uploaded (its documented pattern:
        # preupload_lfs_files, then create_commit with the same operations).
        self._preuploaded: dict[tuple[str, str], Any] = {}

    def _retry(self, action: str, fn: Callable[[], T]) -> T:
        with hub_errors(action, self.description, self.token):
            return retry_transient(action, fn, on_retry=self.retry_messages.append)

    # -- reading -------------------------------------------------------------------------------

    def ensure_exists(self, private: bool) -> bool:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            self._retry("read", lambda: self.api.repo_info(self.repo_id, repo_type=self.repo_type))
            return False
        except (RepositoryNotFoundError, RepoNotFound):
            pass
        self._retry(
            "create",
            lambda: self.api.create_repo(
                self.repo_id, repo_type=self.repo_type, private=private, exist_ok=True
            ),
        )
        log.info("created %s %s (%s)", self.repo_type, self.repo_id, "private" if private else "public")
        return True

    def ensure_revision(self, revision: str) -> bool:
        """Create the branch `revision` from the default branch when it is missing."""
        from huggingface_hub.errors import RevisionNotFoundError

        try:
            self._retry(
                "read", lambda: self.api.repo_info(self.repo_id, repo_type=self.repo_type, revision=revision)
            )
            return False
        except RevisionNotFoundError:
            self._retry(
                "create branch",
                lambda: self.api.create_branch(
                    self.repo_id, branch=revision, repo_type=self.repo_type, exist_ok=True
                ),
            )
            return True

    def _head_state(self, revision: str) -> RemoteState:
        """The revision's head commit, without listing files (`files` is left empty)."""
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        try:
            info = self._retry(
                "read", lambda: self.api.repo_info(self.repo_id, repo_type=self.repo_type, revision=revision)
            )
        except (RepositoryNotFoundError, RepoNotFound):
            return RemoteState(exists=False, head=None)
        except RevisionNotFoundError:
            return RemoteState(exists=True, head=None, revision_exists=False)
        return RemoteState(exists=True, head=info.sha)

    def head(self, revision: str) -> str | None:
        return self._head_state(revision).head

    def state(self, revision: str) -> RemoteState:
        from huggingface_hub.hf_api import RepoFile

        found = self._head_state(revision)
        if found.head is None:
            return found
        head = found.head

        def tree() -> list:
            return list(
                self.api.list_repo_tree(self.repo_id, recursive=True, revision=head, repo_type=self.repo_type)
            )

        files = {}
        for entry in self._retry("list files of", tree):
            if isinstance(entry, RepoFile):
                files[entry.path] = RemoteFile(
                    path=entry.path,
                    size=entry.size,
                    sha256=entry.lfs.sha256 if entry.lfs else None,
                    git_oid=entry.blob_id,
                )
        return RemoteState(exists=True, head=head, files=files)

    def read_text(self, path: str, revision: str, git_oid: str | None = None) -> str | None:
        """A small text file of the repo at `revision`. With the file's git blob id (from the tree
        listing), a copy this machine already has (read or committed before) is used without a
        request: the id names the content, so it cannot be stale."""
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

        known = self._texts().get(git_oid) if git_oid else None
        if known is not None:
            return known

        def download() -> str:
            return self.api.hf_hub_download(
                self.repo_id, path, repo_type=self.repo_type, revision=revision, cache_dir=self._cache_dir()
            )

        try:
            local = self._retry(f"download {path} from", download)
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, RepoNotFound):
            return None
        with open(local, "rb") as fh:
            data = fh.read()
        self._texts().put(data)
        return data.decode("utf-8")

    def remember_text(self, data: bytes) -> None:
        """Keep a copy of a small file just committed, so the next run need not download it."""
        self._texts().put(data)

    def _texts(self) -> BlobTexts:
        import os

        return BlobTexts(os.path.join(self.settings.cache_dir, "hub-texts"))

    def _cache_dir(self) -> str:
        import os

        return os.path.join(self.settings.cache_dir, "hub-downloads")

    # -- writing -------------------------------------------------------------------------------

    def commit(
        self,
        plan: PublishPlan,
        files: dict[str, StagedFile],
        local_paths: dict[str, str],
        message: str,
        create_pr: bool = False,
    ) -> CommitResult:
        """One commit holding every added/changed file and every deletion of the plan, made
        against `plan.parent_commit`. A moved head raises CommitConflict (the caller re-plans).
        A lost response is safe to retry: the parent check turns a duplicate into a conflict."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete
        from huggingface_hub.errors import HfHubHTTPError

        operations: list = []
        for change in plan.changes:
            if change.kind in ("added", "changed"):
                staged = files[change.path]
                sent = self._preuploaded.get((staged.path, staged.sha256))
                operations.append(sent or _addition(staged, local_paths[change.path]))
            elif change.kind == "deleted":
                operations.append(CommitOperationDelete(path_in_repo=change.path))

        additions = [op for op in operations if isinstance(op, CommitOperationAdd)]
        self._upload_with_progress(additions, plan.revision, create_pr)

        def create():
            # Files already uploaded above are not sent again: create_commit skips uploaded ops.
            return self.api.create_commit(
                self.repo_id,
                operations,
                commit_message=message,
                repo_type=self.repo_type,
                revision=plan.revision,
                parent_commit=plan.parent_commit,
                create_pr=create_pr or None,
                num_threads=max(1, self.settings.hub_max_concurrency),
            )

        try:
            info = self._retry("commit to", create)
        except HfHubHTTPError as exc:
            if _status(exc) in (409, 412):
                raise CommitConflict(str(exc)) from None
            raise PublishError(f"The Hub refused the commit to {self.description}: {exc}") from None
        return CommitResult(commit=info.oid, url=info.commit_url, pr_url=info.pr_url)

    def _upload_with_progress(self, additions: list, revision: str, create_pr: bool) -> None:
        """Upload the LFS files of a commit before the commit itself (huggingface_hub's
        preupload_lfs_files), in parallel, advancing a bytes progress artifact (and, from the
        command line, a terminal bar) as each file lands. Objects the Hub already holds are not
        sent; regular files travel inside the commit."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        from hubpress.orchestration.artifacts import Progress

        additions = [op for op in additions if not op._is_uploaded]  # sent ahead by preupload()
        if not additions:
            return
        total = sum(op.upload_info.size for op in additions)
        progress = Progress(total, f"Uploading {len(additions)} file(s)", unit="bytes")

        def upload(op) -> int:
            self._preupload(op, revision, create_pr)
            return op.upload_info.size

        with ThreadPoolExecutor(max_workers=max(1, self.settings.hub_max_concurrency)) as pool:
            for done in as_completed([pool.submit(upload, op) for op in additions]):
                progress.advance(done.result())

    def _preupload(self, op, revision: str | None, create_pr: bool = False) -> None:
        self._retry(
            f"upload {op.path_in_repo} to",
            lambda: self.api.preupload_lfs_files(
                self.repo_id,
                [op],
                repo_type=self.repo_type,
                revision=revision,
                create_pr=create_pr or None,
                num_threads=1,
            ),
        )

    def preupload(self, file: StagedFile, local_path: str) -> None:
        """Send one file's LFS object ahead of the commit, while the rest are still being built.

        LFS objects belong to the repo, not to a revision or a commit: nothing in the repo changes
        until the commit names them, and the commit's own upload step then finds them present and
        sends nothing. An object the repo already holds is not sent here either (the LFS batch
        answer has no upload action for it). Small files that would travel inside the commit are
        left to it."""
        op = _addition(file, local_path)
        self._preupload(op, revision=None)
        self._preuploaded[(file.path, file.sha256)] = op

    def tag(self, commit: str, tag: str, message: str | None = None) -> bool:
        """Tag `commit`. Returns False when the tag already points there; a tag on another commit
        is an error (tags are releases: hubpress never moves one)."""
        refs = self._retry(
            "list refs of", lambda: self.api.list_repo_refs(self.repo_id, repo_type=self.repo_type)
        )
        for ref in refs.tags:
            if ref.name == tag:
                if ref.target_commit == commit:
                    return False
                raise PublishError(
                    f"Tag {tag!r} already exists in {self.description} on commit {ref.target_commit[:12]}; "
                    "hubpress does not move tags. Choose another tag (--tag)."
                )
        self._retry(
            "tag",
            lambda: self.api.create_tag(
                self.repo_id, tag=tag, tag_message=message, revision=commit, repo_type=self.repo_type
            ),
        )
        return True

    def verify(self, commit: str, files: list[StagedFile]) -> list[str]:
        """Compare the Hub's hashes of the committed files with the staged ones, without downloading."""
        from huggingface_hub.hf_api import RepoFile

        mismatches: list[str] = []
        paths = [f.path for f in files]
        infos: dict[str, RepoFile] = {}
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            result = self._retry(
                "verify files of",
                lambda chunk=chunk: self.api.get_paths_info(
                    self.repo_id, chunk, revision=commit, repo_type=self.repo_type
                ),
            )
            infos.update({i.path: i for i in result if isinstance(i, RepoFile)})
        for f in files:
            info = infos.get(f.path)
            if info is None:
                mismatches.append(f"{f.path}: missing at {commit[:12]}")
            elif info.lfs is not None and info.lfs.sha256 != f.sha256:
                mismatches.append(f"{f.path}: sha256 {info.lfs.sha256} on the Hub, {f.sha256} staged")
            elif info.lfs is None and f.git_oid is not None and info.blob_id != f.git_oid:
                mismatches.append(f"{f.path}: git oid {info.blob_id} on the Hub, {f.git_oid} staged")
            elif info.size != f.size:
                mismatches.append(f"{f.path}: {info.size} bytes on the Hub, {f.size} staged")
        return mismatches

    def parquet_footers(self, commit: str, paths: list[str]) -> dict[str, ParquetFooter]:
        """Rows and schema of each parquet file, from its footer read with range requests (no
        full download)."""
        from huggingface_hub import HfFileSystem

        fs = HfFileSystem(endpoint=self.endpoint, token=self.token.value or False)
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        footers = {}
        for path in paths:

            def read(path=path) -> ParquetFooter:
                with fs.open(f"{prefix}{self.repo_id}@{commit}/{path}", "rb", block_size=256 * 1024) as fh:
                    return read_footer(fh)

            footers[path] = self._retry("read parquet footer of", read)
        return footers

    def commit_url(self, commit: str) -> str:
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        return f"{self.endpoint}/{prefix}{self.repo_id}/commit/{commit}"

    def download(self, filename: str, revision: str | None, cache_dir: str | None = None) -> str:
        from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

        # A missing revision or file is the caller's mistake, not a crash: say which, and where.
        try:
            return self._retry(
                f"download {filename} from",
                lambda: self.api.hf_hub_download(
                    self.repo_id, filename, repo_type=self.repo_type, revision=revision, cache_dir=cache_dir
                ),
            )
        except RevisionNotFoundError:
            raise RepoNotFound(
                f"{self.description} has no revision {revision!r}. Check the branch, tag or commit name."
            ) from None
        except EntryNotFoundError:
            raise RepoNotFound(
                f"{self.description} has no file {filename!r} at {revision or 'main'}. "
                "Check the file name (--filename)."
            ) from None
