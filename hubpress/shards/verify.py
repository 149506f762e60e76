"""Checking a committed dataset revision, the last step of every dataset publish (publish-dataset
and refresh alike): the shard footers carry the manifest's row counts and the expected features,
and each split opens with `datasets`. Nothing is downloaded in full: footers are range reads and
the first row is streamed with its text columns only."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hubpress.errors import PublishError
from hubpress.targets.base import is_local_target

log = logging.getLogger("hubpress.dataset")


def verify_dataset_revision(
    target_name: str,
    target: Any,
    commit: str,
    files: dict[str, dict[str, Any]],
    expected_features: dict[str, Any],
    token: str | None,
    first_columns: list[str],
) -> dict[str, int]:
    """Check a committed dataset revision without downloading it: every shard's footer (range
    reads) must carry the manifest's row count and the expected features, and each split must open
    with `datasets` (streaming the first row's `first_columns`, so no image bytes are fetched).
    `files`: path -> {"split", "num_rows", ...} for the parquet shards (other entries are ignored).
    Returns rows per split; a mismatch raises PublishError saying what differs."""
    shards = {path: facts for path, facts in files.items() if "num_rows" in facts}
    per_split: dict[str, int] = {}
    for facts in shards.values():
        per_split[facts["split"]] = per_split.get(facts["split"], 0) + facts["num_rows"]
    # The footers (range reads) and datasets opening each split are independent round trips.
    with ThreadPoolExecutor(max_workers=1) as pool:
        footers_read = pool.submit(target.parquet_footers, commit, sorted(shards))
        opened = _open_splits(target_name, target, commit, per_split, token, first_columns)
        footers = footers_read.result()
    problems = []
    for path, facts in sorted(shards.items()):
        footer = footers.get(path)
        if footer is None or footer.num_rows != facts["num_rows"]:
            problems.append(
                f"{path}: {footer and footer.num_rows} rows committed, {facts['num_rows']} in the manifest"
            )
        elif footer.features != expected_features:
            problems.append(f"{path}: its features are not the expected ones ({footer.features})")
    if problems:
        raise PublishError(f"Verification of {target_name}@{commit[:12]} failed: " + "; ".join(problems[:5]))
    for split, first in opened.items():
        if first is None or set(first) != set(first_columns):
            raise PublishError(
                f"Verification of {target_name}@{commit[:12]}: split {split!r} does not open with datasets."
            )
    return per_split


def _open_splits(
    target_name: str,
    target: Any,
    commit: str,
    per_split: dict[str, int],
    token: str | None,
    columns: list[str],
) -> dict[str, dict[str, Any] | None]:
    """The first row (`columns` only) of each non-empty split, as `datasets` streams it at `commit`."""
    import datasets

    from hubpress.targets import hub_http

    hub_http.install()
    first_rows = {}
    for split in sorted(per_split):
        if not per_split[split]:
            continue  # an empty split has no first row to read
        source = str(Path(target.versions) / commit) if is_local_target(target_name) else target_name
        extra = {} if is_local_target(target_name) else {"revision": commit, "token": token or False}
        try:
            ds = datasets.load_dataset(source, split=split, streaming=True, columns=columns, **extra)
            first_rows[split] = next(iter(ds), None)
        except Exception:  # noqa: BLE001 - reported after the footers' findings, which say more
            log.warning(
                "datasets could not open split %r of %s@%s", split, target_name, commit[:12], exc_info=True
            )
            first_rows[split] = None
    return first_rows
