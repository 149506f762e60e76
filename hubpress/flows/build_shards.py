"""publish-dataset's build step on the flow's task runner: build_shard over the plans (threads or
Dask), or one `build-split` subflow run per split (`fan_out: splits`), with each built shard's
early upload started while the others build. hubpress.flows.publish_dataset calls `build_all`."""

from __future__ import annotations

from collections import deque

from prefect import flow
from prefect.futures import as_completed, wait

from hubpress.errors import UndecodableAtBuild
from hubpress.orchestration.runners import carry, on_threads
from hubpress.settings import get_settings
from hubpress.shards.pipeline import load_split_plans, save_split_plans
from hubpress.shards.staging import Staging
from hubpress.sources.reader import decodes_in_process
from hubpress.tasks.build import UndecodableShard, build_shard
from hubpress.tasks.publish import preupload_task


def build_shards(plans, staging_uri, settings, progress=None, upload_to=None) -> tuple[list, list]:
    """build_shard over the plans on the flow's task runner (threads or Dask); with `upload_to`,
    each shard's upload starts as soon as it is built, while the others build. Returns the built
    shards and the images that did not decode (every shard is built: one pass finds them all).

    Largest first, so the longest build-then-upload chain starts at once and small shards fill in.
    On threads, only as many builds as there are build slots are submitted at a time: submitted all
    at once, they would race for the slots and the largest could start last."""
    queue = deque(sorted(plans, key=lambda plan: -plan.estimated_size))
    # A night's few new images decode on threads: the decode processes would cost more to start.
    in_process = decodes_in_process(
        ref for plan in plans for sample in plan.samples for ref in sample.images()
    )
    in_flight = max(1, settings.build_concurrency) if on_threads() else len(queue)
    running: list = []
    shards, uploads = [], []
    undecodable: list = []  # every shard is built, so one pass finds every image that fails

    def submit_next() -> None:
        plan = queue.popleft()  # carry(): a plan holds its samples; Prefect need not walk them
        running.append(build_shard.submit(carry(plan), staging_uri, settings, in_process))

    while queue and len(running) < in_flight:
        submit_next()
    while running:
        done = next(as_completed(running))
        running.remove(done)
        if queue:
            submit_next()
        shard = done.result()
        if isinstance(shard, UndecodableShard):
            undecodable.extend(shard.problems)
            continue
        shards.append(shard)
        if upload_to is not None:
            uploads.append(preupload_task.submit(upload_to, shard.staged()))
        if progress is not None:
            progress.advance()
    finish_uploads(uploads)
    return shards, undecodable


def build_all(fan_out: str, plans, staging, stage, settings, progress, upload_to) -> list:
    """Every shard of the plans: on the flow's task runner, or as one subflow run per split
    (`fan_out: splits`: a child run in the UI, with its own tasks and logs)."""
    if fan_out != "splits":
        shards, undecodable = build_shards(plans, settings.staging, settings, progress, upload_to)
        if undecodable:
            raise UndecodableAtBuild(tuple(undecodable))
        return shards
    shards, uploads, undecodable = [], [], []
    for split in sorted({plan.split for plan in plans}):
        save_split_plans(staging, stage.relpath, split, [p for p in plans if p.split == split])
        built, problems = build_split(split, stage.relpath, settings.staging)
        undecodable.extend(problems)
        shards.extend(built)
        progress.advance(len(built))
        if upload_to is not None:  # this split's uploads overlap the next split's build
            uploads.extend(preupload_task.submit(upload_to, shard.staged()) for shard in built)
    finish_uploads(uploads)
    if undecodable:
        raise UndecodableAtBuild(tuple(undecodable))
    return shards


def finish_uploads(uploads: list) -> None:
    """Wait for the early uploads. One the Hub refused for good (a token that cannot write, a wait
    over the bound) stops the run here, before the publish step asks again; any other failure
    returned False, and the publish step sends that shard."""
    wait(uploads)
    for upload in uploads:
        upload.result()


@flow(name="build-split", flow_run_name="build-{split}")
def build_split(split: str, stage: str, staging_uri: str) -> tuple[list, list]:
    """The shards of one split, as a subflow run of publish-dataset (`fan_out: splits`).

    Its parameters are only names: the split's shard plans are read from the run's folder in
    staging, where the parent wrote them, so no sample list travels through the Prefect API."""
    settings = get_settings({"staging": staging_uri})
    plans = load_split_plans(Staging(staging_uri, settings), stage, split)
    return build_shards(plans, staging_uri, settings)
