"""Files staged on S3 reach the Hub one local copy at a time.

A commit's files must be on local disk for the upload (hf_xet and the LFS upload read paths). From
S3 staging, copying every file the plan uploads before the commit would need room for all of
them at once: the whole dataset on a first publish, 1 TB in the temporary folder. Instead each
copy is sent ahead of the commit (HubRepo.send_ahead, huggingface_hub's preupload-then-commit
pattern) and removed as soon as the Hub has it, `workers` at a time, so the temporary folder
holds at most `workers` files. The commit then names them without reading them again; files it
carries itself (small regular files, and any the Hub did not take ahead) keep their copy until it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hubpress.targets.hub_upload import each_until_failure
from hubpress.targets.plan import PublishPlan, StagedFile

# A staged file -> a local path holding its bytes (the file itself, or a copy from S3 staging).
Materialise = Callable[[StagedFile], str]


def local_paths(
    target: Any,
    plan: PublishPlan,
    files: dict[str, StagedFile],
    materialise: Materialise,
    discard: Callable[[str], None] | None,
    create_pr: bool,
    workers: int,
) -> Mapping[str, str]:
    """{path in repo: local path} of the plan's uploads that the commit must still read.

    Without `discard` (the files are where they are: local staging, weights on disk), every
    upload is materialised at once. With it, each copy the target took ahead is discarded at once;
    a target that cannot send ahead (a local directory, which copies each file into its new
    version itself) gets its copies one at a time (CopiedWhenRead)."""
    send = getattr(target, "send_ahead", None)
    if discard is None:
        return {change.path: materialise(files[change.path]) for change in plan.uploads}
    if send is None:
        return CopiedWhenRead(
            {change.path: files[change.path] for change in plan.uploads}, materialise, discard
        )
    from hubpress.orchestration.artifacts import Progress

    uploads = [files[change.path] for change in plan.uploads]
    progress = Progress(sum(f.size for f in uploads), f"Uploading {len(uploads)} file(s)", unit="bytes")

    def one(file: StagedFile) -> tuple[int, str | None]:
        if target.sent_ahead(file):  # an earlier attempt of this publish sent it (a re-plan)
            return file.size, None
        path = materialise(file)
        if send(file, path, plan.revision, create_pr):
            discard(path)
            path = None
        return file.size, path

    try:
        # A copy or send that fails ends the step: the files behind it are not copied from
        # staging nor sent (each is up to a shard's size, for a commit that will not be made).
        done = each_until_failure(one, uploads, workers, on_done=lambda sent: progress.advance(sent[0]))
    finally:
        progress.close()
    kept = [path for _size, path in done]
    return {file.path: path for file, path in zip(uploads, kept, strict=True) if path is not None}


class CopiedWhenRead(Mapping[str, str]):
    """{path in repo: local path} for a target that copies each file itself (a local directory)
    from S3 staging: a file's copy is made when its path is read, and the copy read before it is
    removed then (the target copies one file at a time, and is done with a file when it asks for
    the next); `close` removes the last. Without it the whole upload was copied to the temporary
    folder before the commit began."""

    def __init__(
        self, files: dict[str, StagedFile], materialise: Materialise, discard: Callable[[str], None]
    ):
        self._files = files
        self._materialise, self._discard = materialise, discard
        self._held: str | None = None

    def __getitem__(self, path: str) -> str:
        staged = self._files[path]  # KeyError, as a dict's
        self.close()
        self._held = self._materialise(staged)
        return self._held

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._discard(held)
