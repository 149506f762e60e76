"""What an interrupted run leaves on the Hub, and the one clean-up it may do there.

While a command runs, the Hub repos it talks to are noted here: each repo it opened, each it
created (HubRepo.ensure_exists) and each it sent a commit to; and each local directory target it
opened, with whether its commit began and ended. When the person presses Ctrl-C,
`after_interrupt` deletes a repo that this run created, never sent a commit to, and that still
holds nothing but what the Hub creates with a repo (one initial commit with `.gitattributes`, no
tag, every branch at that commit), and returns one sentence per repo saying what state it is in.
A repo that existed before the run is never deleted.

The notes are per process (one command is one run); `forget()` starts over.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

# What the Hub puts in a repo it creates: the tree of its initial commit.
CREATED_BY_THE_HUB = frozenset({".gitattributes"})


@dataclass
class _Noted:
    repo: Any  # the HubRepo (its HfApi and token: the clean-up asks with the run's credentials)
    created: bool = False
    commit_sent: bool = False
    committed: bool = False  # a local directory's commit ended (the Hub's answer says that there)


@dataclass
class _Notes:
    lock: threading.Lock = field(default_factory=threading.Lock)
    repos: dict[str, _Noted] = field(default_factory=dict)

    def note(self, repo: Any, **flags: bool) -> None:
        with self.lock:
            noted = self.repos.setdefault(repo.description, _Noted(repo))
            for name, value in flags.items():
                if value:
                    setattr(noted, name, True)


_NOTES = _Notes()
_STOP = threading.Event()  # Ctrl-C was pressed: failures from here on are its echo, not news
_STOPPED_AT: list[float] = []  # when (time.monotonic), while _STOP is set


def request_stop() -> None:
    _STOPPED_AT[:] = [time.monotonic()]
    _STOP.set()


def stopping() -> bool:
    return _STOP.is_set()


def stopped_after(began: float) -> bool:
    """Ctrl-C came after `began` (time.monotonic): a request in flight then ends at once
    (hubpress.targets.hub_http); the tidy-up's own requests, begun later, go on."""
    return _STOP.is_set() and bool(_STOPPED_AT) and _STOPPED_AT[0] >= began


def opened(repo: Any) -> None:
    _NOTES.note(repo)


def created(repo: Any) -> None:
    _NOTES.note(repo, created=True)


def commit_sent(repo: Any) -> None:
    """Said just before a commit request leaves: from here on the repo may hold the commit."""
    _NOTES.note(repo, commit_sent=True)


def committed(target: Any) -> None:
    """Said when a local directory's new version is in place (its commit is one rename)."""
    _NOTES.note(target, committed=True)


def forget() -> None:
    _STOP.clear()
    _STOPPED_AT.clear()
    with _NOTES.lock:
        _NOTES.repos.clear()


@dataclass(frozen=True)
class RepoShape:
    """What a repo holds, as far as the clean-up needs to know."""

    files: frozenset[str]
    commits: int  # on the default branch
    branch_heads: frozenset[str]
    tags: int


def holds_only_what_the_hub_creates(shape: RepoShape) -> bool:
    return (
        shape.files <= CREATED_BY_THE_HUB
        and shape.commits <= 1
        and len(shape.branch_heads) <= 1
        and shape.tags == 0
    )


def _shape(repo: Any) -> RepoShape:
    api, kind = repo.api, repo.repo_type
    files = api.list_repo_files(repo.repo_id, repo_type=kind)
    commits = api.list_repo_commits(repo.repo_id, repo_type=kind)
    refs = api.list_repo_refs(repo.repo_id, repo_type=kind)
    return RepoShape(
        files=frozenset(files),
        commits=len(commits),
        branch_heads=frozenset(b.target_commit for b in refs.branches),
        tags=len(refs.tags),
    )


def _local_state(noted: _Noted) -> str:
    """A local directory target changes in one step (LocalDir.commit), so it shows one complete
    version whatever the moment of the interrupt."""
    where = noted.repo.description
    if noted.committed:
        return f"{where} holds this run's complete version"
    if noted.commit_sent:
        return (
            f"{where} shows its previous complete version or this run's (it changes in one step); "
            "run the command again to finish"
        )
    return f"nothing was written to {where}; it is as it was before this run"


def _state(noted: _Noted) -> str:
    repo = noted.repo
    if getattr(repo, "repo_id", None) is None:  # a local directory target
        return _local_state(noted)
    name = f"{repo.repo_id} ({repo.repo_type})"
    if noted.commit_sent:
        return (
            f"{name} may hold this run's commit (it was sent before the interrupt): look at its history, "
            "or run the command again (an unchanged repo gets no second commit)"
        )
    if not noted.created:
        return f"nothing was committed to {name}; it is as it was before this run"
    try:
        if holds_only_what_the_hub_creates(_shape(repo)):
            repo.api.delete_repo(repo.repo_id, repo_type=repo.repo_type)
            return f"nothing was committed; the empty repo {name} this run had created was deleted"
    except Exception as exc:  # the Hub could not be asked: say so, keep the repo
        return (
            f"nothing was committed to {name}, which this run created; it was kept, as the Hub could not be "
            f"checked ({type(exc).__name__}): delete it if it is empty"
        )
    return f"{name}, which this run created, holds more than the Hub put there, so it was kept"


def after_interrupt() -> list[str]:
    """Clean up after Ctrl-C (see the module's docstring); one sentence per repo this run opened."""
    with _NOTES.lock:
        noted = list(_NOTES.repos.values())
    return [_state(n) for n in noted]
