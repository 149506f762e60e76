"""Where a row's media bytes may come from: the row itself, or a file of the upstream repo at the
pinned revision. Nothing else.

`datasets` gives media stored beside the data files (imagefolder, audiofolder) as
`{"bytes": None, "path": "hf://datasets/{repo}@{sha}/..."}`. A row someone else wrote can hold any
path there: `hf://` of another, private repo (read with this runner's token, it would end up in a
public dataset), a file of this machine (`/home/me/.ssh/...`, `file://...`), or the upstream repo
at another revision. Every such value goes through the name gate
(`hubpress.storage.names.repo_file_url`); only what passes is read. A refused value drops its row
with the problem kind `media_outside_upstream`, and one warning line names the row and the path.

Without streaming, `datasets` downloads such files first (huggingface_hub's cache) and gives their
local copies' paths. A local path is accepted only as such a copy: it must lie in the cache's
snapshot of the upstream repo at the pinned revision, and is then gated as the file it copies.

What is read is then held to the upstream's listing at that revision (size, sha256 or git blob
id: hubpress.refresh.upstream_listing): a cached copy that is not the listed file (another tool
wrote it, or an older hubpress kept it unchecked) is removed and the file read from the upstream
instead; bytes the upstream answers that are not the listed file's drop the row as
`media_not_as_listed`, and a path the listing does not name as `missing_media`.

Rows hold undecoded values only: nothing downstream (filters, the output row) reads a path.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hubpress.refresh.report import RefreshReport
from hubpress.storage.names import MEDIA_OUTSIDE_UPSTREAM, UnsafeNameError, inside, repo_file_url

log = logging.getLogger("hubpress.refresh")

REFUSALS_LOGGED = 5  # warning lines per backend; the report counts every refused row
MEDIA_NOT_AS_LISTED = "media_not_as_listed"  # the bytes read are not the file the upstream lists


class MediaNotAsListed(Exception):
    """Media bytes the upstream answered that are not the file its listing names."""


@dataclass
class MediaOrigin:
    """The one place a backend's media may come from: `repo_id` at the commit `revision`."""

    repo_id: str
    revision: str
    endpoint: str | None = None
    token: str | bool | None = None
    repo_type: str = "dataset"
    refusals: list[str] = field(default_factory=list)  # one line per refused value (first few)
    _fs: Any = field(default=None, repr=False)
    # The upstream's listing at `revision`, once asked: the process keeps only the last few
    # upstreams' (upstream_listing), and a mix of more reads them in turns, so an origin asking
    # there on every read listed its whole repo again each time another had been listed since.
    _listing: Any = field(default=None, repr=False, compare=False)

    def path_in_repo(self, url: str) -> str:
        """The file's path in the upstream repo, or UnsafeNameError (kind media_outside_upstream)."""
        return repo_file_url(url, self.repo_type, self.repo_id, self.revision)

    @property
    def _pinned(self) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{prefix}{self.repo_id}@{self.revision}"

    def _repo_cache(self) -> str:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        folder = repo_folder_name(repo_id=self.repo_id, repo_type=self.repo_type)
        return os.path.join(os.path.abspath(constants.HF_HUB_CACHE), folder)

    def _listed(self, rel: str):
        """What the upstream's listing at the pinned revision says of `rel`; FileNotFoundError
        when it names no such file (the row is then `missing_media`)."""
        from hubpress.refresh.upstream_listing import listed_upstream

        if self._listing is None:
            self._listing = listed_upstream(
                self.repo_id, self.revision, self.token, self.endpoint, self.repo_type
            )
        listed = self._listing
        if rel not in listed:
            raise FileNotFoundError(rel)
        return listed[rel]

    def read(self, path: str) -> bytes:
        """The bytes `path` names, after the gate: an hf:// URL is read from the pinned repo and
        revision (named by us, never as the row spelled it); a local path only when it is the
        cache's copy of such a file. Either is the file the upstream lists, or not read."""
        if "://" not in path:
            return self._read_local_copy(path)
        return self._read_remote(self.path_in_repo(path))

    def _read_remote(self, rel: str) -> bytes:
        from hubpress.targets.listed_bytes import bytes_not_as_listed

        listed = self._listed(rel)
        if self._fs is None:
            from huggingface_hub import HfFileSystem

            self._fs = HfFileSystem(endpoint=self.endpoint, token=self.token or False)
        with self._fs.open(f"{self._pinned}/{rel}", "rb") as handle:
            data = handle.read()
        if (problem := bytes_not_as_listed(data, listed.size, listed.sha256, listed.git_oid)) is not None:
            raise MediaNotAsListed(
                f"{rel} of {self.repo_id} at {self.revision[:12]} was read, but {problem}: the upstream's "
                "Hub (or a proxy in between) answered other bytes than it lists."
            )
        return data

    def _read_local_copy(self, path: str) -> bytes:
        from hubpress.targets.listed_bytes import bytes_not_as_listed, remove_from_cache

        repo_cache = self._repo_cache()
        snapshot = os.path.join(repo_cache, "snapshots", self.revision) + os.sep
        if not path.startswith(snapshot):
            raise UnsafeNameError(
                f"media path {path!r} names a file on this machine, not a file of {self.repo_id} at "
                f"{self.revision[:12]}: upstream media is read only from the upstream repo at its "
                "pinned revision.",
                path,
                kind=MEDIA_OUTSIDE_UPSTREAM,
            )
        # The copy stands for hf://{repo}@{revision}/{rel}: the one rule decides on that name. The
        # entry is a link into the repo's blobs, which must stay inside the repo's cache folder.
        rel = self.path_in_repo(f"hf://{self._pinned}/{path[len(snapshot) :]}")
        real = inside(repo_cache, f"snapshots/{self.revision}/{rel}", what="media path")
        if not stat.S_ISREG(os.stat(real).st_mode):
            raise UnsafeNameError(
                f"media path {path!r} is not a regular file.", path, kind=MEDIA_OUTSIDE_UPSTREAM
            )
        listed = self._listed(rel)
        if os.stat(real).st_size == listed.size:
            with open(real, "rb") as handle:
                data = handle.read()
            # Checked as read (an image is small: hashing it costs less than asking a cache).
            if bytes_not_as_listed(data, listed.size, listed.sha256, listed.git_oid) is None:
                return data
        # Not the listed file (another tool wrote it, or it was kept unchecked): not used, and not
        # kept for the next run; the upstream's own file is read instead.
        remove_from_cache(os.path.join(snapshot, rel))
        return self._read_remote(rel)


def _needs_read(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("bytes") is None and value.get("path") is not None


def _resolved(value: Any, origin: MediaOrigin) -> Any:
    if not _needs_read(value):
        return value
    path = value.get("path")
    if not isinstance(path, str):
        raise UnsafeNameError(f"media path {path!r} is not a string", str(path), kind=MEDIA_OUTSIDE_UPSTREAM)
    return {**value, "bytes": origin.read(path)}


def resolve_media(
    rows: Iterator[tuple[int, Mapping[str, Any]]],
    columns: list[str],
    origin: MediaOrigin,
    report: RefreshReport,
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Rows whose media values hold bytes: a value with only a path is read from the upstream repo
    when the gate lets it, and its row is dropped (`media_outside_upstream`) when it does not. A
    file of the upstream repo that is missing drops its row as `missing_media`."""
    for index, row in rows:
        changed: dict[str, Any] = {}
        try:
            for column in columns:
                value = row.get(column)
                if isinstance(value, list) and any(_needs_read(v) for v in value):
                    changed[column] = [_resolved(v, origin) for v in value]
                elif _needs_read(value):
                    changed[column] = _resolved(value, origin)
        except (UnsafeNameError, MediaNotAsListed) as exc:
            report.drop(
                index, [MEDIA_OUTSIDE_UPSTREAM if isinstance(exc, UnsafeNameError) else MEDIA_NOT_AS_LISTED]
            )
            if len(origin.refusals) < REFUSALS_LOGGED:
                line = f"backend {report.backend_id!r}: row {index} refused: {exc}"
                origin.refusals.append(line)
                log.warning("%s", line)
            continue
        except FileNotFoundError:
            report.drop(index, ["missing_media"])
            continue
        yield index, ({**row, **changed} if changed else row)
