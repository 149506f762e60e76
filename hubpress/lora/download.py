"""`download_lora`: a file of a Hub model repo (or of a local target), checked before it is handed
over.

The file name passes the name gate (`../../etc/passwd`, absolute paths, backslashes and
percent-encoded dots are refused in one line, for a local target as for the Hub). From the Hub,
the revision is pinned to its commit first; the downloaded bytes must have the sha256 (LFS) or git
blob id (regular file) the Hub lists for that path at that commit, and weights must pass the same
safetensors header check as a publish. A file that fails is removed from the cache (a later run
must not find it there) and the download fails in one line.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

from hubpress.errors import HubpressError, SourceError
from hubpress.lora.header import PICKLE_SUFFIXES
from hubpress.storage.names import inside, path_in_repo
from hubpress.targets.listed_bytes import digests, not_as_listed, remove_from_cache

WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)


class DownloadCheckFailed(SourceError):
    """A downloaded file is not what the repo lists, or is not sound weights; it was removed."""


def check_weights(path: str | Path, name: str) -> None:
    """The safetensors header check of a publish, for a weights file (by its name in the repo)."""
    if name.lower().endswith(WEIGHT_SUFFIXES):
        from hubpress.lora.weights import inspect_safetensors

        inspect_safetensors(path)


def _listed(repo, name: str, revision: str):
    """What the Hub lists for `name` at `revision`, or None when the repo, revision or file is not
    there (the download then fails with the line that says which)."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    from hubpress.targets.hub_calls import RepoNotFound

    try:
        return repo.file_facts(name, revision)
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, RepoNotFound):
        return None


def download_checked(repo_id: str, filename: str, revision: str | None, token: str | None) -> str:
    """The local path of `filename` after every check, or a one-line error."""
    from hubpress.targets.base import is_local_target, local_path

    name = path_in_repo(filename, what="--filename")
    if is_local_target(repo_id):
        from hubpress.targets.local import LocalDir

        path = inside(LocalDir(local_path(repo_id)).files_at(revision), name, what="--filename")
        if not path.is_file():
            raise SourceError(f"{path} does not exist.")
        check_weights(path, name)
        return str(path)
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return cached_offline(repo_id, name, revision)
    from hubpress.settings import get_settings, resolve_token
    from hubpress.targets.hub import HubRepo
    from hubpress.targets.hub_calls import hub_errors

    settings = get_settings()
    repo = HubRepo(repo_id, "model", settings, resolve_token(token, settings))
    with hub_errors("download from", repo.description, repo.token):
        # Pinned to one commit, so the listing and the bytes are of the same file.
        pinned = repo.head(revision or "main") or revision
        # Listed first: the download is held to the listed size (a Hub sending bytes without end
        # must not fill the disk before the checks below could refuse them). A missing revision
        # or file is left to the download, which says which in its own words.
        listed = _listed(repo, name, pinned or "main")
        with warnings.catch_warnings():
            # A full disk is said once, by the error line (pinned to a sha, huggingface_hub
            # checks the free space before writing anything, and warns first).
            warnings.filterwarnings("ignore", message="Not enough free disk space")
            local = repo.download(name, pinned, listed_size=listed.size if listed else None)
        if listed is None:
            listed = repo.file_facts(name, pinned or "main")
    where = f"{name} of {repo.description} at {(pinned or 'main')[:12]}"
    if listed is None:
        problem = "the Hub lists no such file at that commit"
    else:
        problem = not_as_listed(local, listed.size, listed.sha256, listed.git_oid)
    if problem is None:
        try:
            check_weights(local, name)
        except HubpressError as exc:
            problem = str(exc).replace(local, "the download")
        except Exception as exc:  # noqa: BLE001 - any other failure of the check refuses the file
            problem = f"its header check failed ({exc})"
    if problem is not None:
        remove_from_cache(local)
        raise DownloadCheckFailed(
            f"Downloaded {where}, but {problem}: it was removed from the cache. The repo or the "
            "connection returned other bytes than the Hub lists; do not use this file."
        )
    if pinned and pinned != (revision or "main"):
        _remember_revision(local, name, revision or "main", pinned)
    return local


def _remember_revision(local: str, name: str, revision: str, commit: str) -> None:
    """Record in the cache that `revision` was `commit`, as hf_hub_download does for a branch or
    tag (refs/<revision>): the download was pinned to the commit, which records nothing, so
    HF_HUB_OFFLINE later found no copy of `main` (cached_offline). Best effort, like the client's."""
    from pathlib import PurePosixPath

    storage = Path(local).parents[len(PurePosixPath(name).parts) + 1]
    ref = storage / "refs" / revision
    with contextlib.suppress(OSError):
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")
        tmp.write_text(commit)
        os.replace(tmp, ref)


def cached_offline(repo_id: str, name: str, revision: str | None) -> str:
    """With HF_HUB_OFFLINE set (a training node without the network), the copy huggingface_hub's
    cache holds, as its own hf_hub_download and `datasets` hand it over offline. The Hub cannot be
    asked for the file's sha256, but the cache names each blob by it (the git blob id for a small
    file): the bytes must still match that name, and weights must pass the header check."""
    from huggingface_hub import try_to_load_from_cache

    where = f"{name} of model repo {repo_id} at {revision or 'main'}"
    local = try_to_load_from_cache(repo_id, name, revision=revision or "main", repo_type="model")
    if not isinstance(local, str):
        raise SourceError(
            f"HF_HUB_OFFLINE is set and no copy of {where} is cached here: unset HF_HUB_OFFLINE to "
            "download it from the Hub."
        )
    blob = os.path.basename(os.path.realpath(local))
    _, sha256, blob_id = digests(local)
    problem = (
        None if blob in (sha256, blob_id) else f"its bytes are not the blob {blob[:16]}... the cache names"
    )
    if problem is None:
        try:
            check_weights(local, name)
        except HubpressError as exc:
            problem = str(exc).replace(local, "the cached copy")
    if problem is not None:
        remove_from_cache(local)
        raise DownloadCheckFailed(
            f"HF_HUB_OFFLINE is set and the cached copy of {where} cannot be used: {problem}; it was removed "
            "from the cache. Unset HF_HUB_OFFLINE to download it again."
        )
    return local
