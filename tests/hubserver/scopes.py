"""Fine-grained tokens: a token may be limited to reading some repos it could otherwise write (as a
fine-grained Hub token without `repo.write` on them). Writes there are 403 (a pull request, which
anyone who can read a repo may open, stays allowed), and whoami-v2 reports the token as the Hub
reports fine-grained ones: role `fineGrained` with scoped permissions.

    HubServer(..., tokens={"hf_x": ("alice", "write")}, read_only={"hf_x": {"dataset/alice/ro"}})
    python -m tests.hubserver ... --token alice=hf_x:write --read-only hf_x=dataset/alice/ro
"""

from __future__ import annotations

from .errors import Forbidden

READ = ["repo.content.read"]
WRITE = ["repo.content.read", "repo.write"]


def repo_key(repo_type: str, repo_id: str) -> str:
    return f"{repo_type}/{repo_id}"


def parse_read_only(spec: str) -> tuple[str, str]:
    """TOKEN=TYPE/NS/NAME -> (token, "type/ns/name")."""
    token, sep, repo = spec.partition("=")
    kind, _, repo_id = repo.partition("/")
    if not sep or not token or kind not in ("model", "dataset", "space") or repo_id.count("/") != 1:
        raise ValueError("expected TOKEN=TYPE/NAMESPACE/NAME, e.g. hf_x=dataset/alice/data")
    return token, repo_key(kind, repo_id)


def check_not_read_only(read_only: frozenset[str], repo_type: str, repo_id: str, pull_request: bool) -> None:
    if not pull_request and repo_key(repo_type, repo_id) in read_only:
        raise Forbidden(
            f"This token may only read {repo_type} {repo_id}: its permissions lack repo.write there"
        )


def fine_grained(user: str, role: str, orgs: set[str], read_only: frozenset[str]) -> dict:
    """The accessToken part of whoami-v2 for a token limited to reading `read_only` repos."""
    everywhere = WRITE if role == "write" else READ
    scoped = [{"entity": {"type": "user", "name": user}, "permissions": everywhere}]
    scoped += [{"entity": {"type": "org", "name": org}, "permissions": everywhere} for org in sorted(orgs)]
    for key in sorted(read_only):
        kind, _, repo_id = key.partition("/")
        scoped.append({"entity": {"type": kind, "name": repo_id}, "permissions": READ})
    return {
        "displayName": f"{user}-fine-grained",
        "role": "fineGrained",
        "fineGrained": {"canReadGatedRepos": False, "global": [], "scoped": scoped},
    }
