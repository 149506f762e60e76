"""Can this token write the target? Asked once, before any work (listing, intake, build), from the
Hub's account answer (`whoami-v2`), decided by a pure function.

The Hub's answer names the token's role: `read`, `write`, or `fineGrained` with a list of scoped
permissions, each for an entity (the user, an org, or one repo) and holding `repo.write` when the
token may write there. A `write` token writes in its user's namespace and in the orgs where the
user's role is above `read`. A pull request needs only that the repo is visible: the Hub lets
anyone who can read a repo open one, so nothing is refused for `--create-pr` but a read token.
An account answer of another shape refuses nothing: the Hub decides at the first write.
"""

from __future__ import annotations

from typing import Any

WRITE_PERMISSIONS = frozenset({"repo.write", "repo.content.write"})


def _entity_permissions(scoped: list, kind: set[str], name: str) -> set[str] | None:
    for item in scoped:
        if not isinstance(item, dict):
            continue
        entity = item.get("entity") if isinstance(item.get("entity"), dict) else {}
        if entity.get("type") in kind and entity.get("name") == name:
            permissions = item.get("permissions")
            return {p for p in permissions if isinstance(p, str)} if isinstance(permissions, list) else set()
    return None


def write_refusal(account: Any, repo_type: str, repo_id: str, pull_request: bool = False) -> str | None:
    """Why the token described by `account` (the whoami-v2 answer) cannot write `repo_id`, or None
    when it can (or when the answer does not say)."""
    if not isinstance(account, dict):
        return None
    auth = account.get("auth") if isinstance(account.get("auth"), dict) else {}
    token = auth.get("accessToken") if isinstance(auth.get("accessToken"), dict) else {}
    role = token.get("role")
    user = account.get("name")
    namespace = repo_id.split("/", 1)[0]
    if role == "read":
        return "the token has the read role"
    if pull_request:
        return None
    if role == "write":
        if namespace == user:
            return None
        for org in account.get("orgs") or []:
            if isinstance(org, dict) and org.get("name") == namespace:
                if org.get("roleInOrg", "write") == "read":
                    return f"{user!r} has only the read role in the org {namespace!r}"
                return None
        return f"the token's user {user!r} cannot write in the namespace {namespace!r}"
    if role == "fineGrained":
        fine = token.get("fineGrained") if isinstance(token.get("fineGrained"), dict) else {}
        scoped = fine.get("scoped") if isinstance(fine.get("scoped"), list) else []
        repo = _entity_permissions(scoped, {repo_type}, repo_id)
        if repo is not None:
            return (
                None
                if repo & WRITE_PERMISSIONS
                else f"the token may only read the {repo_type} repo {repo_id}"
            )
        owner = _entity_permissions(scoped, {"user", "org"}, namespace)
        if owner is not None and owner & WRITE_PERMISSIONS:
            return None
        return f"the fine-grained token has no write permission for {repo_id} or the namespace {namespace!r}"
    return None
