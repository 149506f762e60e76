"""Publishing staged files to a target: plan, pre-flight, one commit, re-plan on conflict, tag,
verify. Shared by datasets, LoRA releases and refreshes; the flows wrap these steps as tasks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from hubpress.errors import CommittedButFailed, ConfigError, HubpressError, PublishError
from hubpress.settings import Settings, require_write_token, resolve_token
from hubpress.storage.names import answer_url
from hubpress.storage.scratch import scratch_dir
from hubpress.targets import send_ahead
from hubpress.targets.base import (
    CommitConflict,
    RemoteState,
    RepoType,
    Target,
    check_repo_id,
    is_local_target,
    local_path,
)
from hubpress.targets.limits import Limits, check_limits
from hubpress.targets.local import LocalDir, staged_text
from hubpress.targets.ownership import owned_files, usable_manifest
from hubpress.targets.plan import PublishPlan, StagedFile, make_plan
from hubpress.targets.run_manifest import keep_their_manifest
from hubpress.targets.send_ahead import Materialise

log = logging.getLogger("hubpress.publish")

MANIFEST = "manifest.json"
CARD = "README.md"


def open_target(
    target: str,
    repo_type: RepoType,
    settings: Settings,
    token: str | None = None,
    write: bool = True,
    pull_request: bool = False,
    defer_access_check: bool = False,
) -> Target:
    """A Target for a Hub repo id or a local directory. A write to the Hub without a token, or with
    a token that cannot write the repo (`pull_request`: only open a PR on it), fails here, before
    any work, with one message naming every way to provide one. `defer_access_check`: the caller
    first asks whether there is anything to write (an unchanged publish needs no write access, and
    its one round trip stays one) and then calls `require_write_access` before any work."""
    from hubpress.targets import interrupted

    if is_local_target(target):
        from hubpress.storage.hashcache import HashCache

        local = LocalDir(local_path(target), cache=HashCache(Path(settings.cache_dir) / "hashes.sqlite"))
        interrupted.opened(local)  # on Ctrl-C, the command says what state it is in
        if write and not defer_access_check:
            local.check_write_access()  # a folder that takes no files: one line before any work
        return local
    from hubpress.targets.hub import HubRepo

    check_repo_id(target)
    resolved = require_write_token(token, settings) if write else resolve_token(token, settings)
    repo = HubRepo(target, repo_type, settings, resolved)
    interrupted.opened(repo)  # on Ctrl-C, the command says what state this repo is in
    if write and not defer_access_check:
        repo.check_write_access(pull_request)
    return repo


def require_write_access(target: Target, pull_request: bool = False) -> None:
    """The write-access check open_target deferred: a Hub repo asks the Hub (whoami) and refuses a
    token that cannot write it; a local directory's folder must take new files."""
    check = getattr(target, "check_write_access", None)
    if check is not None:
        check(pull_request)


@dataclass(slots=True)
class PublishOutcome:
    target: str
    plan: PublishPlan
    commit: str | None = None  # None when nothing changed (or dry run)
    commit_url: str | None = None
    pr_url: str | None = None
    tag: str | None = None
    tag_created: bool = False
    created_repo: bool = False
    attempts: int = 1
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # said to the person (CLI, --json, the run log)
    already_present: tuple[str, ...] = ()  # committed, but their content was on the target already
    refused: list[str] = field(default_factory=list)  # names of the target the gate refused, one line each
    transfer: str | None = None  # "xet" or "lfs" to the Hub; None for a local directory or no commit
    xet_sent_bytes: int | None = None  # on Xet: what crossed the wire after deduplication
    deduped_bytes: int = 0  # on Xet: bytes of the uploaded files whose chunks the Hub already held

    @property
    def uploaded_files(self) -> list[str]:
        if self.commit is None:
            return []
        return [c.path for c in self.plan.uploads]

    @property
    def uploaded_bytes(self) -> int:
        """Bytes of the files uploaded (their logical size): files whose whole content the target
        already held (the LFS path's answer) are left out."""
        if self.commit is None:
            return 0
        held = set(self.already_present)
        return sum(c.size for c in self.plan.uploads if c.path not in held)

    @property
    def sent_bytes(self) -> int:
        """Bytes that crossed the wire: on Xet, after chunk deduplication and compression (hf_xet's
        report); elsewhere the uploaded files' bytes."""
        if self.commit is None:
            return 0
        return self.xet_sent_bytes if self.xet_sent_bytes is not None else self.uploaded_bytes

    @property
    def already_present_bytes(self) -> int:
        held = set(self.already_present)
        return sum(c.size for c in self.plan.uploads if c.path in held) if self.commit else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "commit": self.commit,
            "commit_url": self.commit_url,
            "pr_url": self.pr_url,
            "tag": self.tag,
            "dry_run": self.dry_run,
            "uploaded_files": self.uploaded_files,
            "uploaded_bytes": self.uploaded_bytes,
            "already_present_files": list(self.already_present),
            "already_present_bytes": self.already_present_bytes,
            "transfer": self.transfer if self.commit else None,
            "sent_bytes": self.sent_bytes,
            "deduped_bytes": self.deduped_bytes if self.commit else 0,
            "unchanged_files": [c.path for c in self.plan.of("unchanged")],
            "deleted_files": [c.path for c in self.plan.of("deleted")] if self.commit else [],
            "plan": self.plan.summary(),
            # What a publish would send; for a dry run, what it would send at most (the Hub may
            # already hold some of it).
            "planned_bytes": sum(c.size for c in self.plan.uploads),
            "attempts": self.attempts,
            "refused_names": list(self.refused),
            "warnings": list(self.warnings),
        }


def bytes_phrase(result: dict[str, object], verb: str = "") -> str:
    """A publish's bytes for a summary line: the files' bytes (followed by `verb`), and on Xet what
    crossed the wire after deduplication."""
    uploaded = int(result.get("uploaded_bytes") or 0)  # type: ignore[call-overload]
    if result.get("transfer") != "xet":
        return f"{uploaded:,} bytes{verb}"
    sent = int(result.get("sent_bytes") or 0)  # type: ignore[call-overload]
    return f"{uploaded:,} bytes ({sent:,} sent after Xet deduplication)"


# A warning the result carries (`warnings`, `refused_names`): the CLI prints it as its own
# `warning:` line, so its console leaves out the log record (the API and the Prefect UI keep it).
SAID_BY_THE_COMMAND = {"hubpress_said_by_command": True}


def _warn_if_unseen(outcome: PublishOutcome, target: Target, state) -> None:
    """A dry run against a Hub repo it cannot see plans against an empty repo: say so, since a
    private repo looks the same as a missing one to a reader without a usable token."""
    token = getattr(target, "token", None)
    if state.exists or token is None:
        return
    who = "no token" if token.value is None else f"the token from {token.source}"
    outcome.warnings.append(
        f"{outcome.target} could not be seen with {who}: it does not exist, or it is private and "
        "this token cannot read it. The plan below assumes an empty repo."
    )
    log.warning(outcome.warnings[-1], extra=SAID_BY_THE_COMMAND)


CardFn = Callable[[str | None], str]


def _close(local_paths: object) -> None:
    """The last copy a local directory's commit read (send_ahead.CopiedWhenRead) goes with it."""
    if isinstance(local_paths, send_ahead.CopiedWhenRead):
        local_paths.close()


def _local_source(staged: StagedFile) -> str:
    if staged.source.startswith("s3://"):
        raise PublishError(f"{staged.path} is staged on S3 but no materialiser was given.")
    return staged.source


def _read_both(target: Target, state: RemoteState, first: str | None, second: str | None):
    """The target's text of two files at its head (None for a file not asked for or absent), read
    at the same time: each may be a round trip to the Hub. Files absent from the tree are not asked
    for, and the tree's blob ids let the target use copies it already has."""
    if state.head is None:
        return None, None
    wanted = [path for path in (first, second) if path is not None and path in state.files]

    def read(path: str) -> str | None:
        text = partial(target.read_text, path, state.head, git_oid=state.files[path].git_oid)
        # A manifest hubpress cannot read back proves nothing (hubpress.targets.ownership); the
        # card it cannot read back stops the publish, in one line: it would be overwritten.
        return usable_manifest(text) if path == MANIFEST else text()

    with ThreadPoolExecutor(max_workers=2) as pool:
        texts = dict(zip(wanted, pool.map(read, wanted), strict=True))
    return texts.get(first) if first else None, texts.get(second) if second else None


def _absolute(target: Target, url: str | None) -> str | None:
    """A URL the server returned, made absolute from the endpoint when relative (`/org/name/...`),
    and kept only on the endpoint's origin (hubpress.storage.names.answer_url); None otherwise."""
    endpoint = getattr(target, "endpoint", None)
    if not endpoint:
        return url
    return answer_url(url, endpoint)


def _tag_taken(tag: str, where: str, existing: str, note: str = "") -> PublishError:
    return PublishError(
        f"Tag {tag!r} already exists in {where} on commit {existing[:12]}; hubpress does not move "
        f"tags{note}. Choose another tag (--tag)."
    )


def _check_tag_free(target: Target, tag: str, allowed: str | None, target_name: str) -> None:
    """Before any commit: a tag that already names another commit stops the publish (hubpress never
    moves a tag). `allowed` is the head when nothing is to be committed (tagging it again is fine)."""
    existing = target.tag_commit(tag)
    if existing is not None and existing != allowed:
        raise _tag_taken(tag, target_name, existing, ", and nothing was committed")


def apply_tag(target: Target, commit: str, tag: str, message: str | None = None) -> bool:
    """Tag `commit`, on any target. False when the tag already names it; a tag on another commit is
    an error (tags are releases: hubpress never moves one)."""
    existing = target.tag_commit(tag)
    if existing == commit:
        return False
    if existing is not None:
        raise _tag_taken(tag, target.description, existing)
    target.create_tag(commit, tag, message)
    return True


@contextlib.contextmanager
def after_commit(commit: str, commit_url: str | None, target_name: str) -> Iterator[None]:
    """Steps after a commit: a failure there says which commit was made (CommittedButFailed)."""
    try:
        yield
    except CommittedButFailed:
        raise
    except HubpressError as exc:
        raise CommittedButFailed(
            f"committed {commit[:12]} to {target_name} ({commit_url or 'no URL'}), then failed: {exc}",
            commit=commit,
            commit_url=commit_url,
            target=target_name,
        ) from None


def _create(target: Target, revision: str, private: bool, create_pr: bool) -> bool:
    """Create the target, and the branch `revision` when missing; True when the repo was created."""
    created = target.ensure_exists(private)
    ensure_revision = getattr(target, "ensure_revision", None)
    if ensure_revision is not None and revision != "main" and not create_pr:
        ensure_revision(revision)
    return created


def publish_files(
    target: Target,
    staged: list[StagedFile],
    *,
    target_name: str,
    revision: str = "main",
    private: bool = True,
    message: str,
    card: CardFn | None = None,
    allow_deletes: bool = True,
    create_pr: bool = False,
    tag: str | None = None,
    dry_run: bool = False,
    materialise: Materialise = _local_source,
    discard: Callable[[str], None] | None = None,
    max_attempts: int = 5,
    on_plan: Callable[[PublishPlan], None] | None = None,
) -> PublishOutcome:
    """Publish `staged` (plus a card merged with the target's current README) in ONE commit.

    The plan is made against the target's head and the commit names that head as its parent;
    when someone else committed in between, the target refuses, and the plan is made again
    (their commit is kept). Nothing changed: no upload and no commit. `materialise` gives a
    staged file's local path; `discard`, when given, removes such a path (a copy from S3
    staging) as soon as the commit no longer needs it (hubpress.targets.send_ahead).
    """
    created = False
    # A missing repo (or branch) is created once a plan against it has passed every check, just
    # before the first upload: a publish refused before then leaves no empty repo behind.
    ready = dry_run
    # The merged card is written here; the directory goes when the publish ends, however it ends.
    with scratch_dir("publish") as scratch_path:
        scratch = Path(scratch_path)
        attempt = 0
        while attempt < max_attempts:
            state = target.state(revision)
            if create_pr and state.exists and not state.revision_exists:
                # A pull request is opened against an existing branch; the Hub refuses it otherwise.
                raise ConfigError(
                    f"--create-pr opens a pull request against {revision!r}, which {target_name} does not "
                    f"have: publish to it once without --create-pr to create it, or pass an existing "
                    "--revision."
                )
            # A dry run against a branch that does not exist yet: plan against empty.
            revision_missing = state.exists and not state.revision_exists
            head = state.head
            manifest_text, existing_card = _read_both(
                target, state, MANIFEST if allow_deletes else None, CARD if card is not None else None
            )
            # Only files hubpress provably wrote may go (hubpress.targets.ownership).
            ownership = owned_files(manifest_text if allow_deletes else None, state.files)
            owned = ownership.deletable
            files = keep_their_manifest(list(staged), MANIFEST, manifest_text, materialise, scratch)
            if card is not None:
                card_file, _ = staged_text(CARD, card(existing_card), scratch)
                files = [f for f in files if f.path != CARD] + [card_file]
            plan = make_plan(target_name, revision, head, files, state.files, owned)
            check_limits(plan, set(state.files), getattr(target, "limits", None) or Limits())
            if not ready and not (state.exists and (state.revision_exists or create_pr)):
                created = _create(target, revision, private, create_pr)
                ready = True
                continue  # planned again against what was created (its first commit, or main's head)
            ready = True
            attempt += 1
            if on_plan is not None:
                on_plan(plan)
            outcome = PublishOutcome(
                target=target_name, plan=plan, created_repo=created, attempts=attempt, dry_run=dry_run
            )
            if revision_missing:
                outcome.notes.append(f"revision {revision!r} does not exist yet; it will be created")
            outcome.refused = [*state.refused, *ownership.refused]
            for line in outcome.refused if attempt == 1 else ():
                log.warning("%s", line, extra=SAID_BY_THE_COMMAND)
            if tag:
                _check_tag_free(target, tag, head if plan.is_noop else None, target_name)
            if dry_run:
                _warn_if_unseen(outcome, target, state)
                return outcome
            if plan.is_noop:
                log.info("%s is up to date: nothing to upload, no commit made", target_name)
                outcome.notes.append("nothing changed: no upload, no commit")
                if tag:
                    outcome.tag = tag
                    outcome.tag_created = apply_tag(target, head, tag) if head else False
                return outcome
            by_path = {f.path: f for f in files}
            workers = getattr(getattr(target, "settings", None), "hub_max_concurrency", 1)
            local_paths = send_ahead.local_paths(
                target, plan, by_path, materialise, discard, create_pr, workers
            )
            try:
                result = target.commit(plan, by_path, local_paths, message, create_pr=create_pr)
            except CommitConflict as exc:
                log.warning(  # one line: the Hub's answer spans several
                    "%s moved while publishing (%s); planning again (attempt %d/%d)",
                    target_name,
                    " ".join(str(exc).split()),
                    attempt,
                    max_attempts,
                )
                continue
            finally:
                _close(local_paths)
            outcome.commit, outcome.pr_url = result.commit, _absolute(target, result.pr_url)
            outcome.already_present = tuple(getattr(result, "already_present", ()) or ())
            outcome.transfer = result.transfer
            outcome.xet_sent_bytes, outcome.deduped_bytes = result.sent_bytes, result.deduped_bytes
            outcome.commit_url = _absolute(target, result.url) or target.commit_url(result.commit)
            remember = getattr(target, "remember_text", None)
            for path in (CARD, MANIFEST) if remember is not None else ():
                if path in local_paths:  # the next run finds these by blob id, without a download
                    remember(Path(local_paths[path]).read_bytes())
            sent = [by_path[c.path] for c in plan.uploads]
            with after_commit(outcome.commit, outcome.commit_url, target_name):
                mismatches = target.verify(result.commit, sent)
                if mismatches:
                    raise PublishError(f"verification failed: {'; '.join(mismatches[:5])}")
                if tag:
                    outcome.tag = tag
                    outcome.tag_created = apply_tag(target, result.commit, tag, message)
            log.info(
                "published %d file(s), %s, to %s at %s",
                len(outcome.uploaded_files),
                bytes_phrase(outcome.to_dict()),
                target_name,
                result.commit[:12],
            )
            return outcome
        raise PublishError(
            f"{target_name} kept moving: {max_attempts} plans in a row were overtaken by other commits. "
            "Nothing of ours was committed; run again when the other writer is done."
        )
