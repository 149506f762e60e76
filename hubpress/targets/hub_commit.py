"""A HubRepo's commit: every added or changed file and every deletion of a plan in one commit
against the planned parent, and a commit whose answer was lost recognised as this publish's when
it landed (hubpress.targets.hub_answers), so it is never made twice.

A commit to a branch is looked for in the branch's history since the planned parent. A commit with
`--create-pr` lands on a new `refs/pr/N`, which nothing stops a retry from opening again: the pull
requests open before the first attempt are noted, and a lost answer is looked for on those opened
since (the refs listing with `include_prs`, then each new PR's history since the planned parent)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from hubpress.errors import PublishError
from hubpress.targets import hub_answers, hub_upload, interrupted
from hubpress.targets.base import CommitConflict, CommitResult
from hubpress.targets.hub_calls import HubUnavailable, is_transient, status_of
from hubpress.targets.plan import PublishPlan, StagedFile

if TYPE_CHECKING:
    from hubpress.targets.hub import HubRepo

log = logging.getLogger("hubpress.hub")

_PR_REF = re.compile(r"refs/pr/([1-9][0-9]{0,8})")


def commit(
    repo: HubRepo,
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
    for change in plan.uploads:
        staged = files[change.path]
        sent = repo._preuploaded.get((staged.path, staged.sha256))
        operations.append(sent or hub_upload.addition(staged, local_paths[change.path]))
    operations += [CommitOperationDelete(path_in_repo=change.path) for change in plan.deletions]

    additions = [op for op in operations if isinstance(op, CommitOperationAdd)]
    hub_upload.upload_all(
        lambda op: repo._preupload(op, plan.revision, create_pr),
        additions,
        repo.settings.hub_max_concurrency,
    )

    if ignored := hub_answers.ignored_by_the_hub(additions, f"The Hub at {repo.endpoint}", repo.description):
        raise ignored
    fingerprint = hub_answers.plan_fingerprint(plan, files)
    lost: list[BaseException] = []  # attempts that ended without a usable answer
    # A pull request this commit opens is one not open now (its answer may be lost).
    before = pull_requests(repo) if create_pr else {}

    def find_landed() -> Any:
        """This plan's commit when it landed though its answer was lost, else None."""
        if create_pr:
            return landed_pull_request(repo, plan, fingerprint, before)
        return landed_on_branch(repo, plan, fingerprint)

    def create():
        # After an attempt without an answer, the commit may have landed: look before sending it
        # again, so it is never made twice.
        if lost and (landed := find_landed()):
            return landed
        try:
            # Files already uploaded above are not sent again: create_commit skips uploaded ops
            # (and would draw an "Upload 0 LFS files" bar for them).
            interrupted.commit_sent(repo)
            with hub_upload.library_bars_off():
                return repo.api.create_commit(
                    repo.repo_id,
                    operations,
                    commit_message=message,
                    commit_description=hub_answers.fingerprint_line(fingerprint),
                    repo_type=repo.repo_type,
                    revision=plan.revision,
                    parent_commit=plan.parent_commit,
                    create_pr=create_pr or None,
                    num_threads=max(1, repo.settings.hub_max_concurrency),
                )
        except Exception as exc:
            if is_transient(exc) or hub_answers.unusable(exc, "", "") is not None:
                lost.append(exc)
            raise

    try:
        info = repo._retry("commit to", create)
    except (HubUnavailable, hub_answers.UnusableAnswer, HfHubHTTPError) as exc:
        # The last attempt's answer was lost or unusable, or a retry was refused because the
        # head moved (412): the head tells whether the commit landed.
        landed = find_landed() if lost else None
        if landed is None:
            if isinstance(exc, HfHubHTTPError) and status_of(exc) in (409, 412):
                raise CommitConflict(str(exc)) from None
            if isinstance(exc, HfHubHTTPError):
                raise PublishError(f"The Hub refused the commit to {repo.description}: {exc}") from None
            raise
        if isinstance(exc, hub_answers.UnusableAnswer):
            log.warning("%s", exc)  # one line naming the Hub and what it sent
        info = landed
    oid = info.oid
    if not hub_answers.is_commit_id(oid):
        if landed := find_landed():
            log.warning("%s", hub_answers.bad_commit_id(oid, f"The Hub at {repo.endpoint}", repo.description))
            info, oid = landed, landed.oid
        else:
            raise hub_answers.bad_commit_id(oid, f"The Hub at {repo.endpoint}", repo.description)
    if oid == plan.parent_commit and not create_pr:
        raise hub_answers.no_commit_made(oid, f"The Hub at {repo.endpoint}", repo.description)
    # Files whose content the Hub held when they were sent, ahead or just above (on LFS the batch
    # answer had no upload action; on Xet no chunk was new): committed, but nothing of them crossed.
    held = tuple(
        sorted(op.path_in_repo for op in additions if op._upload_mode == "lfs" and repo.was_held(op))
    )
    url = info.commit_url if isinstance(info.commit_url, str) else repo.commit_url(oid)
    # The path the uploads took (a Hub found without Xet storage on the first one is taken through LFS).
    xet = hub_upload.hub_xet.served(repo.endpoint)
    transfer = repo._xet_sent.commit_fields(additions) if xet else {"transfer": "lfs"}
    return CommitResult(commit=oid, url=url, pr_url=info.pr_url, already_present=held, **transfer)


def landed_on_branch(repo: HubRepo, plan: PublishPlan, fingerprint: str) -> Any:
    """This plan's commit, when it is in the revision's history since the planned parent (a
    commit carrying its fingerprint); None otherwise."""
    head = repo.head(plan.revision)
    if head is None or head == plan.parent_commit:
        return None
    return _carrying(repo, head, plan, fingerprint, pr_url=None)


def pull_requests(repo: HubRepo) -> dict[int, str] | None:
    """The repo's pull requests: number -> the commit its ref points to; None from a Hub that does
    not list them (its answer has no `pullRequests`: a lost answer cannot then be recognised, and
    the publish goes on as before). Only refs named `refs/pr/N` that point to a commit id are taken
    (the name gate's rule for what a Hub names)."""
    try:
        refs = repo._retry(
            "list the pull requests of",
            lambda: repo.api.list_repo_refs(
                repo.repo_id, repo_type=repo.repo_type, include_pull_requests=True
            ),
        )
    except hub_answers.UnusableAnswer as exc:
        log.warning("%s", exc)
        return None
    found = {}
    for ref in refs.pull_requests or ():
        number = _PR_REF.fullmatch(str(ref.ref))
        if number and hub_answers.is_commit_id(ref.target_commit):
            found[int(number[1])] = ref.target_commit
    return found


def landed_pull_request(
    repo: HubRepo, plan: PublishPlan, fingerprint: str, before: dict[int, str] | None
) -> Any:
    """This plan's commit, when a pull request opened since `before` holds it (newest first);
    None otherwise."""
    now = pull_requests(repo) if before is not None else None
    opened = {n: head for n, head in (now or {}).items() if n not in (before or {})}
    for number in sorted(opened, reverse=True):
        pr_url = f"{repo.web_url()}/discussions/{number}"
        landed = _carrying(repo, opened[number], plan, fingerprint, pr_url=pr_url)
        if landed is not None:
            return landed
    return None


# How far back from the head a lost commit is looked for: it was made on the planned parent a moment
# ago, so it is among the newest commits. A history that has not reached the parent by then (a Hub
# listing commits without end) is not read further: the commit is then taken as not landed, and its
# retry names the planned parent, which the Hub refuses if the head moved.
HISTORY_LIMIT = 1000


def _carrying(repo: HubRepo, head: str, plan: PublishPlan, fingerprint: str, pr_url: str | None) -> Any:
    """The commit in `head`'s history since the planned parent that carries `fingerprint`.

    The history is read a page at a time and only back to the planned parent (huggingface_hub's
    list_repo_commits reads every page first: a `Link: rel="next"` back to a page already read
    was followed forever). A listing that names a commit twice, or an entry whose id is not a
    commit id, is an answer that cannot be used."""
    from urllib.parse import quote

    from huggingface_hub import CommitInfo
    from huggingface_hub.utils import build_hf_headers, paginate

    who, action = f"The Hub at {repo.endpoint}", f"read the history of {repo.description}"

    def walk() -> Any:
        url = f"{repo.endpoint}/api/{repo.repo_type}s/{repo.repo_id}/commits/{quote(head, safe='')}"
        pages = paginate(
            url, params={}, headers=build_hf_headers(token=repo.api.token, library_name="hubpress")
        )
        for read, entry in enumerate(hub_answers.each_once(pages, _commit_id, who, action)):
            oid = _commit_id(entry)
            if not hub_answers.is_commit_id(oid):
                raise hub_answers.bad_history_entry(oid, who, action)
            if oid == plan.parent_commit or read >= HISTORY_LIMIT:
                return None
            if hub_answers.carries_fingerprint(_text(entry, "message"), fingerprint):
                return CommitInfo(
                    repo.commit_url(oid), _text(entry, "title"), _text(entry, "message"), oid,
                    _endpoint=repo.endpoint, pr_url=pr_url,
                )  # fmt: skip
        return None

    landed = repo._retry("read the history of", walk)
    if landed is not None:
        log.warning(
            "the commit to %s landed though its answer was lost: %s%s carries this publish's plan "
            "fingerprint, so it is reported and verified as this publish's commit",
            repo.description,
            landed.oid[:12],
            f" (pull request {pr_url})" if pr_url else "",
        )
    return landed


def _commit_id(entry: Any) -> Any:
    return entry.get("id") if isinstance(entry, dict) else None


def _text(entry: dict, field: str) -> str:
    value = entry.get(field)
    return value if isinstance(value, str) else ""
