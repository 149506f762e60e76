"""A Hub repo as a publishing target: every conversation with the Hugging Face Hub goes through
`HubRepo`.

It speaks through huggingface_hub's HfApi (never raw HTTP) and turns what the Hub answers into
hubpress's typed values (RemoteState, RemoteFile, CommitResult). Each call goes through
hubpress.targets.hub_calls: transient failures are retried with backoff, auth and not-found
answers become errors a person can act on. Small files it reads or commits are kept by blob id
(hubpress.targets.blob_texts).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hubpress.errors import PublishError
from hubpress.settings import ResolvedToken, Settings
from hubpress.shards.parquet_footer import ParquetFooter, read_footer
from hubpress.storage.names import split_remote_paths
from hubpress.targets import blob_texts, hub_answers, hub_upload, hub_waits, interrupted, listed_sizes
from hubpress.targets.base import CommitResult, RemoteState, RepoType
from hubpress.targets.download_retries import quiet_resume_chatter, unreachable_line
from hubpress.targets.hub_calls import (
    HubUnavailable,
    RepoNotFound,
    T,
    failure_reason,
    hub_errors,
    is_transient,
    retry_transient,
    status_of,
)
from hubpress.targets.limits import Limits
from hubpress.targets.plan import PublishPlan, RemoteFile, StagedFile, commit_mismatches

log = logging.getLogger("hubpress.hub")
quiet_resume_chatter()  # huggingface_hub's per-retry download warnings: hubpress says the outcome once
# Footer reads in flight at once when verifying a revision (each one or two small requests).
FOOTER_READERS = 8


def _remote_file(entry: Any) -> RemoteFile:
    """A RepoFile from the tree listing or paths info, as the plan compares it."""
    return RemoteFile(
        path=entry.path,
        size=entry.size,
        sha256=entry.lfs.sha256 if entry.lfs else None,
        git_oid=entry.blob_id,
    )


class HubRepo:
    """A Hub repo as a publishing target."""

    def __init__(self, repo_id: str, repo_type: RepoType, settings: Settings, token: ResolvedToken):
        from huggingface_hub import HfApi

        from hubpress.targets import hub_http

        hub_http.install(settings)
        hub_waits.set_max_wait(settings.hub_max_wait_seconds)  # every wait the Hub asks for is bounded
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
        # What Xet uploads sent, ahead of a commit or for it (each commit reports what it added).
        self._xet_sent = hub_upload.hub_xet.XetTally()
        # Files, by (path, sha256), whose whole content the Hub held when they were sent (a killed
        # run's uploads among them), as the send itself found: the LFS batch answer, or hf_xet's
        # dedupe against shards the CAS accepted. No record of an earlier run is consulted.
        self._held: set[tuple[str, str]] = set()
        self._held_lock = threading.Lock()
        # A missing repo created by the first file sent ahead (hub_upload.CreateOnFirstUpload).
        self.creation = hub_upload.CreateOnFirstUpload(self.ensure_exists)
        # The files of a commit's tree, by commit id: a commit never changes, so the publish step
        # planning against the head the plan step listed asks only for the head (state()).
        self._trees: dict[str, RemoteState] = {}

    def _retry(self, action: str, fn: Callable[[], T]) -> T:
        started, before = time.monotonic(), len(self.retry_messages)
        with hub_errors(action, self.description, self.token), hub_waits.one_call():
            try:
                return retry_transient(
                    f"{action} {self.description}",
                    fn,
                    base_delay=self.settings.hub_retry_base_seconds,
                    on_retry=self.retry_messages.append,
                )
            except Exception as exc:
                answer = hub_answers.unusable(
                    exc, f"The Hub at {self.endpoint}", f"{action} {self.description}"
                )
                if answer is not None:
                    raise answer from None
                if not is_transient(exc):
                    raise
                tries = len(self.retry_messages) - before + 1
                reason = f"{failure_reason(exc)} ({tries} attempt(s) in {time.monotonic() - started:.0f} s)"
                raise HubUnavailable(
                    unreachable_line(f"{action} {self.description}", self.endpoint, reason, exc)
                ) from None

    def check_write_access(self, pull_request: bool = False) -> None:
        """Refuse, before any work, a token that cannot write this repo (hubpress.targets.access)."""
        from hubpress.errors import HubAccessError
        from hubpress.targets.access import write_refusal

        account = self._retry("check the token for", lambda: self.api.whoami())
        reason = write_refusal(account, self.repo_type, self.repo_id, pull_request)
        if reason is not None:
            raise HubAccessError(
                f"The token from {self.token.source} cannot write {self.description} (the Hub would answer "
                f"HTTP 403): {reason}. Nothing was read or built. Use a token with write access there "
                "(or --create-pr to propose the change)."
            )

    @property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)

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
        interrupted.created(self)  # an interrupt before any commit deletes it again
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
        if not hub_answers.is_commit_id(info.sha):
            raise hub_answers.bad_head(info.sha, f"The Hub at {self.endpoint}", self.description)
        return RemoteState(exists=True, head=info.sha)

    def head(self, revision: str) -> str | None:
        return self._head_state(revision).head

    def state(self, revision: str) -> RemoteState:
        from huggingface_hub.hf_api import RepoFile

        found = self._head_state(revision)
        if found.head is None:
            return found
        head = found.head
        listed_before = self._trees.get(head)
        if listed_before is not None:
            return listed_before

        def tree() -> list:
            pages = self.api.list_repo_tree(
                self.repo_id, recursive=True, revision=head, repo_type=self.repo_type
            )
            return hub_answers.listed_once(
                pages, f"The Hub at {self.endpoint}", f"list files of {self.description}"
            )

        listed = [e for e in self._retry("list files of", tree) if isinstance(e, RepoFile)]
        # Every name the listing carries passes the name gate: a `../x` or `/etc/x` entry is left
        # out (never planned, deleted or read) and reported in one line.
        kept, refused = split_remote_paths([e.path for e in listed], what=f"{self.description} lists")
        allowed = set(kept)
        files = {e.path: _remote_file(e) for e in listed if e.path in allowed}
        lines = tuple(f"{exc} It is ignored." for exc in refused)
        state = self._trees[head] = RemoteState(exists=True, head=head, files=files, refused=lines)
        return state

    def file_facts(self, path: str, revision: str) -> RemoteFile | None:
        """What the Hub lists for one file at `revision` (sha256 for LFS, git blob id), or None."""
        from huggingface_hub.hf_api import RepoFile

        found = self._retry(
            "read",
            lambda: self.api.get_paths_info(
                self.repo_id, [path], revision=revision, repo_type=self.repo_type
            ),
        )
        return next((_remote_file(i) for i in found if isinstance(i, RepoFile) and i.path == path), None)

    def read_text(self, path: str, revision: str, git_oid: str | None = None) -> str | None:
        """A small text file of the repo at `revision`. With the file's git blob id (from the tree
        listing), a copy this machine already has (read or committed before) is used without a
        request: the id names the content, so it cannot be stale."""
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        known = self._texts().get(git_oid) if git_oid else None
        if known is not None:
            return known
        # What the listing of that commit says of the file, when it was listed: its size is
        # refused before any byte is fetched, and an LFS file is held to its sha256.
        listed = (tree := self._trees.get(revision)) and tree.files.get(path)
        if listed and (refusal := blob_texts.too_large(path, self.description, listed.size)) is not None:
            raise refusal

        def download() -> str:
            return self.api.hf_hub_download(
                self.repo_id, path, repo_type=self.repo_type, revision=revision, cache_dir=self._cache_dir()
            )

        # Held to the listed size (else the document limit) while it arrives, not only once on disk.
        bound = listed.size if listed else blob_texts.MAX_DOCUMENT_BYTES
        try:
            with listed_sizes.listed_size(bound, f"{path} of {self.description}", exact=bool(listed)):
                local = self._retry(f"download {path} from", download)
        except LocalEntryNotFoundError:  # no Hub answered and nothing is cached: not "absent"
            raise HubUnavailable(
                f"Could not read {path} of {self.description}: the Hub at {self.endpoint} could not "
                "be reached. Check HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT) and the network."
            ) from None
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, RepoNotFound):
            return None
        if (refusal := blob_texts.too_large(path, self.description, os.path.getsize(local))) is not None:
            raise refusal
        with open(local, "rb") as fh:
            data = fh.read()
        try:
            text = blob_texts.checked_text(data, path, self.description, revision, listed or None, git_oid)
        except PublishError:
            # Other bytes than the listing names are neither used nor kept (the next run downloads again).
            with contextlib.suppress(OSError):
                os.unlink(os.path.realpath(local))
                os.unlink(local)
            raise
        self._texts().put(data)
        return text

    def remember_text(self, data: bytes) -> None:
        """Keep a copy of a small file just committed, so the next run need not download it."""
        self._texts().put(data)

    def _texts(self) -> blob_texts.BlobTexts:
        return blob_texts.BlobTexts(os.path.join(self.settings.cache_dir, "hub-texts"))

    def _cache_dir(self) -> str:
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
        """One commit of the plan against `plan.parent_commit` (hubpress.targets.hub_commit)."""
        from hubpress.targets import hub_commit

        return hub_commit.commit(self, plan, files, local_paths, message, create_pr)

    def _preupload(self, op: Any, revision: str | None, create_pr: bool = False) -> None:
        sent = hub_upload.preupload(
            self.api, self._retry, self.repo_id, self.repo_type, op, revision, create_pr
        )
        if sent.xet is not None:
            self._xet_sent.add(sent.xet)
        if sent.held:
            with self._held_lock:
                self._held.add((op.path_in_repo, op.upload_info.sha256.hex()))

    def was_held(self, op: Any) -> bool:
        """Whether the Hub held all of this operation's content when it was sent (nothing crossed)."""
        with self._held_lock:
            return (op.path_in_repo, op.upload_info.sha256.hex()) in self._held

    def preupload(self, file: StagedFile, local_path: str) -> None:
        """Send one file's LFS object ahead of the commit, while the rest are still being built.

        LFS objects belong to the repo, not to a revision or a commit: nothing in the repo changes
        until the commit names them, and the commit's own upload step then finds them present and
        sends nothing. A file the repo already holds is not sent here either (on Xet the preupload
        answer names its oid at the head; on LFS the batch answer has no upload action for it).
        Small files that would travel inside the commit are left to it."""
        self.creation.before_upload()
        self.send_ahead(file, local_path, revision=None)

    def send_ahead(
        self, file: StagedFile, local_path: str, revision: str | None, create_pr: bool = False
    ) -> bool:
        """Send one file of a planned commit ahead of it (hubpress.targets.send_ahead). True when the
        Hub has its content now, so the commit will not read `local_path`; False for a file the
        commit carries itself (a regular file, or one the Hub said it ignores)."""
        op = hub_upload.addition(file, local_path)
        self._preupload(op, revision, create_pr)
        if not op._is_uploaded:
            return False
        self._preuploaded[(file.path, file.sha256)] = op
        return True

    def sent_ahead(self, file: StagedFile) -> bool:
        """Whether this publish sent `file`'s content ahead already (its commit reuses that)."""
        op = self._preuploaded.get((file.path, file.sha256))
        return op is not None and op._is_uploaded

    def tag_commit(self, tag: str) -> str | None:
        """The commit `tag` points to, or None when there is no such tag (asked before committing)."""
        refs = self._retry(
            "list refs of", lambda: self.api.list_repo_refs(self.repo_id, repo_type=self.repo_type)
        )
        return next((ref.target_commit for ref in refs.tags if ref.name == tag), None)

    def create_tag(self, commit: str, tag: str, message: str | None = None) -> None:
        """Create `tag` on `commit` (hubpress.targets.publish.apply_tag decides whether to). A
        creation applied but not answered is retried into a 409: the tag is this publish's own
        when it names `commit`, and the 409 is then no error."""
        from huggingface_hub.errors import HfHubHTTPError

        try:
            self._retry(
                "tag",
                lambda: self.api.create_tag(
                    self.repo_id, tag=tag, tag_message=message, revision=commit, repo_type=self.repo_type
                ),
            )
        except HfHubHTTPError as exc:
            if status_of(exc) != 409:
                raise
            existing = self.tag_commit(tag)
            if existing != commit:
                from hubpress.targets.publish import _tag_taken

                raise _tag_taken(tag, self.description, existing or "(unknown)") from None
            log.warning("tag %s on %s was already created (an earlier answer was lost)", tag, commit[:12])

    def verify(self, commit: str, files: list[StagedFile]) -> list[str]:
        """Compare the Hub's hashes of the committed files with the staged ones, without downloading."""
        from huggingface_hub.hf_api import RepoFile

        paths = [f.path for f in files]
        committed: dict[str, RemoteFile] = {}
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            result = self._retry(
                "verify files of",
                lambda chunk=chunk: self.api.get_paths_info(
                    self.repo_id, chunk, revision=commit, repo_type=self.repo_type
                ),
            )
            committed.update({i.path: _remote_file(i) for i in result if isinstance(i, RepoFile)})
        return commit_mismatches(commit, files, committed)

    def parquet_footers(
        self,
        commit: str,
        paths: list[str],
        first_row_columns: Sequence[str] = (),
        first_row_of: Collection[str] = (),
    ) -> dict[str, ParquetFooter]:
        """Rows and schema of each parquet file, from its footer read with range requests (no
        full download); for the files in `first_row_of`, also their first row's
        `first_row_columns` (hubpress.shards.parquet_footer.read_footer)."""
        from huggingface_hub import HfFileSystem

        fs = HfFileSystem(endpoint=self.endpoint, token=self.token.value or False)
        prefix = "datasets/" if self.repo_type == "dataset" else ""

        def footer(path: str) -> ParquetFooter:
            def read() -> ParquetFooter:
                with fs.open(f"{prefix}{self.repo_id}@{commit}/{path}", "rb", block_size=256 * 1024) as fh:
                    return read_footer(fh, first_row_columns if path in first_row_of else ())

            return self._retry("read parquet footer of", read)

        # One or two round trips each, and a hundred shards or more: in parallel, a few at a time.
        with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
            return dict(zip(paths, pool.map(footer, paths), strict=True))

    def web_url(self) -> str:
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        return f"{self.endpoint}/{prefix}{self.repo_id}"

    def commit_url(self, commit: str) -> str:
        return f"{self.web_url()}/commit/{commit}"

    def download(
        self,
        filename: str,
        revision: str | None,
        cache_dir: str | None = None,
        listed_size: int | None = None,
    ) -> str:
        """The local path of `filename` at `revision`, or one line saying what is missing or failed
        (hubpress.targets.hub_download); held to `listed_size` bytes when given."""
        from hubpress.targets.hub_download import download

        return download(self, filename, revision, cache_dir, listed_size)
