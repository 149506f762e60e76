"""Downloading one file of a Hub repo (download-lora): huggingface_hub's cache download, with each
way it can fail said in one line, and nothing half-written left in the cache."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from hubpress.errors import disk_error
from hubpress.targets import listed_sizes
from hubpress.targets.hub_calls import HubUnavailable, RepoNotFound

if TYPE_CHECKING:
    from hubpress.targets.hub import HubRepo


def download(
    repo: HubRepo,
    filename: str,
    revision: str | None,
    cache_dir: str | None = None,
    listed_size: int | None = None,
) -> str:
    """The local path of `filename` at `revision` in huggingface_hub's cache. With `listed_size`
    (what the Hub lists for the file), an answer giving more bytes is stopped there
    (hubpress.targets.listed_sizes) and its partial file removed."""
    from huggingface_hub import constants
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RevisionNotFoundError

    def fetch() -> str:
        return repo.api.hf_hub_download(
            repo.repo_id, filename, repo_type=repo.repo_type, revision=revision, cache_dir=cache_dir
        )

    bounded = (
        listed_sizes.listed_size(listed_size, f"{filename} of {repo.description}")
        if listed_size is not None
        else contextlib.nullcontext()
    )
    # A missing revision or file is the caller's mistake, not a crash: say which, and where.
    try:
        with bounded:
            return repo._retry(f"download {filename} from", fetch)
    except listed_sizes.FileNotAsListed:
        sweep_partial_download(repo, cache_dir or constants.HF_HUB_CACHE)
        raise
    except LocalEntryNotFoundError:
        # huggingface_hub's own retries found no Hub and no cached copy: the endpoint failed,
        # not the file name.
        raise HubUnavailable(
            f"Could not download {filename} from {repo.description}: the Hub at {repo.endpoint} "
            "could not be reached and no copy is cached. Check HF_ENDPOINT (or HUBPRESS_HUB_ENDPOINT) "
            "and the network, then run again."
        ) from None
    except RevisionNotFoundError:
        raise RepoNotFound(
            f"{repo.description} has no revision {revision!r}. Check the branch, tag or commit name."
        ) from None
    except EntryNotFoundError:
        raise RepoNotFound(
            f"{repo.description} has no file {filename!r} at {revision or 'main'}. "
            "Check the file name (--filename)."
        ) from None
    # After the Hub's answers above: huggingface_hub's HTTP errors are OSErrors too.
    except OSError as exc:
        failure = disk_error(exc, cache_dir or constants.HF_HUB_CACHE)
        if failure is None:
            raise
        sweep_partial_download(repo, cache_dir or constants.HF_HUB_CACHE)
        raise failure from None


def sweep_partial_download(repo: HubRepo, cache: str) -> None:
    """After a failed download, remove the half-written files huggingface_hub left in this repo's
    cache folder (`*.tmp` refs, `*.incomplete` blobs): nothing half-done stays behind."""
    folder = os.path.join(cache, f"{repo.repo_type}s--{repo.repo_id.replace('/', '--')}")
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith((".tmp", ".incomplete")):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
