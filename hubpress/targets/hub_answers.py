"""Answers the Hub may not give, or give in a shape hubpress cannot use, decided by pure functions.

- A commit whose answer was lost (the Hub's 60 s commit timeout, a dropped connection) may still
  have landed. Every commit hubpress makes carries its plan's fingerprint in its description
  (`plan_fingerprint`: the parent it was planned against, and every path it adds with its sha256
  or deletes). When a commit attempt ends without a usable answer, the revision's head is asked
  for: a head whose description carries this fingerprint is this publish's commit (it was made
  against the planned parent, with the planned files; `verify` then checks its tree). It is
  reported and verified as the publish's commit, and never made twice.
- An answer hubpress cannot use (a body that is not JSON, a missing field, a commit id that is
  not 40 hex digits) becomes one line naming the Hub and what it sent (`UnusableAnswer`).
- A commit answer naming the head the commit was planned against means the Hub made no commit.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hubpress.errors import PublishError
from hubpress.storage import names
from hubpress.targets.plan import PublishPlan, StagedFile

FINGERPRINT_PREFIX = "hubpress-plan:"

_FINGERPRINT = re.compile(re.escape(FINGERPRINT_PREFIX) + r"\s*([0-9a-f]{64})")


class UnusableAnswer(PublishError):
    """The Hub answered, but not in a shape hubpress can use. Never retried."""


def plan_fingerprint(plan: PublishPlan, files: dict[str, StagedFile]) -> str:
    """A digest of what a commit of `plan` changes, against which parent, on which revision."""
    lines = [f"parent {plan.parent_commit or '-'}", f"revision {plan.revision}"]
    lines += [f"add {c.path} {files[c.path].sha256} {files[c.path].size}" for c in plan.uploads]
    lines += [f"delete {c.path}" for c in plan.deletions]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def fingerprint_line(fingerprint: str) -> str:
    """The line every hubpress commit description carries."""
    return f"{FINGERPRINT_PREFIX} {fingerprint}"


def carries_fingerprint(description: str | None, fingerprint: str) -> bool:
    return fingerprint in _FINGERPRINT.findall(description or "")


def is_commit_id(value: object) -> bool:
    """One rule for what a commit id is, wherever an answer names one (the name gate's)."""
    return names.is_commit_id(value)


def shown(value: object, limit: int = 80) -> str:
    """A value a remote sent, shortened and quoted for a one-line message (control characters
    escaped: nothing a remote sends can break the line)."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def unusable(exc: BaseException, who: str, action: str) -> UnusableAnswer | None:
    """The one-line error for a Hub answer huggingface_hub could not read, None when `exc` is not
    one (a body that is not JSON, a missing field, a field of the wrong type)."""
    if isinstance(exc, OSError) or type(exc).__module__.startswith(("huggingface_hub", "hubpress")):
        return None  # the library's own errors (HTTP statuses, missing entries) and ours
    if isinstance(exc, json.JSONDecodeError):
        what = f"a body that is not JSON: {shown(exc.doc)}"
    elif isinstance(exc, KeyError):
        what = f"a JSON answer without the field {shown(exc.args[0] if exc.args else '?')}"
    elif isinstance(exc, TypeError | AttributeError | ValueError):
        what = f"an answer of an unexpected shape ({shown(str(exc))})"
    else:
        return None
    return UnusableAnswer(
        f"{who} answered the request to {action} with {what}: that answer cannot be used. "
        "Check HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT): it must be a Hugging Face Hub."
    )


def bad_commit_id(oid: object, who: str, where: str) -> UnusableAnswer:
    return UnusableAnswer(
        f"{who} answered the commit to {where} with the commit id {shown(oid)}, which is not a git "
        "commit id (40 hex digits): that answer cannot be used. Check HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT)."
    )


def listed_once(entries: Iterable[Any], who: str, action: str) -> list[Any]:
    """A paginated listing's entries, refused when it names a path twice: a `Link: rel="next"`
    back to a page already read would otherwise be followed forever, and two entries for one path
    leave no answer about which content it has (what a publish deletes and skips depends on it)."""
    return list(each_once(entries, lambda entry: getattr(entry, "path", None), who, action))


def each_once(entries: Iterable[Any], key: Callable[[Any], Any], who: str, action: str) -> Iterator[Any]:
    """`entries` as they are read (a caller may stop early, and the next page is then never asked
    for), refused at the first one whose `key` an earlier entry had: the listing repeats itself."""
    seen: set[Any] = set()
    for entry in entries:
        name = key(entry)
        if name in seen:
            raise UnusableAnswer(
                f"{who} answered the request to {action} with a listing that names {shown(name)} twice "
                "(a next page that repeats one already read, or a duplicate entry): that answer cannot "
                "be used. Check HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT) and any proxy in between."
            )
        seen.add(name)
        yield entry


def bad_history_entry(oid: object, who: str, action: str) -> UnusableAnswer:
    return UnusableAnswer(
        f"{who} answered the request to {action} with an entry whose commit id is {shown(oid)}, which "
        "is not a git commit id (40 hex digits): that answer cannot be used. Check HF_ENDPOINT (or "
        "HUBPRESS_HUB_ENDPOINT) and any proxy in between."
    )


def bad_head(oid: object, who: str, where: str) -> UnusableAnswer:
    """A repo's info naming something other than a commit as its head: everything hubpress reads
    is pinned to that id (downloads, listings, an upstream's media), so it is refused first."""
    return UnusableAnswer(
        f"{who} named {shown(oid)} as the head commit of {where}, which is not a git commit id "
        "(40 hex digits): that answer cannot be used. Check HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT)."
    )


def no_commit_made(head: str, who: str, where: str) -> PublishError:
    return PublishError(
        f"the Hub made no commit: {who} answered the commit to {where} with {head[:12]}, the head it "
        "was planned against. Nothing was published; run again, and if it repeats, check the Hub's status."
    )


def ignored_by_the_hub(additions: list, who: str, where: str) -> PublishError | None:
    """The refusal to commit when the Hub's preupload answer marked files of the plan `shouldIgnore`
    (a `.gitignore` of the repo, or an answer that lies): huggingface_hub drops them from the commit
    with a warning, so the commit lands without them and the publish fails after it (exit 3, an
    empty or partial commit left in the history). Said before anything is committed."""
    ignored = sorted(op.path_in_repo for op in additions if getattr(op, "_should_ignore", None))
    if not ignored:
        return None
    shown = ", ".join(ignored[:3]) + (f" and {len(ignored) - 3} more" if len(ignored) > 3 else "")
    return PublishError(
        f"{who} would leave {shown} out of the commit to {where} (its preupload answer marks them "
        "shouldIgnore: a .gitignore in the repo?). Nothing was committed; remove the rule that ignores "
        "them, and if there is none, check the Hub endpoint and any proxy in between."
    )
