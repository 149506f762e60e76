"""Checking a committed dataset revision, the last step of every dataset publish (publish-dataset
and refresh alike): the shard footers carry the manifest's row counts and the expected features,
and each split opens with `datasets`. Nothing is downloaded in full: footers are range reads and
the first row is streamed with its text columns only."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubpress.errors import PublishError
from hubpress.shards.cards import split_front_matter
from hubpress.targets.base import is_local_target
from hubpress.targets.plan import StagedFile

log = logging.getLogger("hubpress.dataset")
CARD = "README.md"


@dataclass(frozen=True, slots=True)
class VerifiedRevision:
    rows: dict[str, int]  # per split
    opened_shape: str | None  # card_shape of the card datasets opened (here or at the parent)
    by_datasets: bool  # datasets opened this revision (else: footers, card and first rows)


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
    shards, per_split = _shards_and_rows(files)
    # The footers (range reads) and datasets opening each split are independent round trips.
    with ThreadPoolExecutor(max_workers=1) as pool:
        footers_read = pool.submit(target.parquet_footers, commit, sorted(shards))
        opened = _open_splits(target_name, target, commit, per_split, token, first_columns)
        footers = footers_read.result()
    problems = _footer_problems(shards, footers, expected_features)
    if problems:
        raise PublishError(f"Verification of {target_name}@{commit[:12]} failed: " + "; ".join(problems[:5]))
    for split, first in opened.items():
        if first is None or set(first) != set(first_columns):
            raise PublishError(
                f"Verification of {target_name}@{commit[:12]}: split {split!r} does not open with datasets."
            )
    return per_split


def _shards_and_rows(files: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The manifest's parquet shards (entries with a row count), and their rows per split."""
    shards = {path: facts for path, facts in files.items() if "num_rows" in facts}
    per_split: dict[str, int] = {}
    for facts in shards.values():
        per_split[facts["split"]] = per_split.get(facts["split"], 0) + facts["num_rows"]
    return shards, per_split


def _footer_problems(
    shards: dict[str, dict[str, Any]], footers: dict[str, Any], expected_features: dict[str, Any]
) -> list[str]:
    problems = []
    for path, facts in sorted(shards.items()):
        footer = footers.get(path)
        if footer is None or footer.num_rows != facts["num_rows"]:
            problems.append(
                f"{path}: {footer and footer.num_rows} rows committed, {facts['num_rows']} in the manifest"
            )
        elif footer.features != expected_features:
            problems.append(f"{path}: its features are not the expected ones ({footer.features})")
    return problems


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


# --- a changed night: the card datasets opened before, checked without datasets ----------------


def card_shape(card_text: str | None) -> str | None:
    """A digest of what `datasets` reads from a card to open a split, less what every changed night
    changes: the front matter with each split's data_files paths and the split sizes left out (the
    configs, their splits, the features and every other key kept). Two revisions with the same
    shape open the same way once their files are named right. None when there is no front matter."""
    return _shape(_front_matter(card_text))


def _front_matter(card_text: str | None) -> dict[str, Any]:
    # Parsed once per check: a card naming thousands of shards takes tens of ms of YAML each time.
    return split_front_matter(card_text or "")[0]


def _shape(meta: dict[str, Any]) -> str | None:
    if not meta:
        return None
    shape = dict(meta)
    configs = shape.get("configs")
    if isinstance(configs, list):
        shape["configs"] = [_without_paths(c) for c in configs]
    info = shape.get("dataset_info")
    if isinstance(info, dict):
        info = {k: v for k, v in info.items() if k not in ("download_size", "dataset_size")}
        if isinstance(info.get("splits"), list):
            info["splits"] = [s.get("name") if isinstance(s, dict) else s for s in info["splits"]]
        shape["dataset_info"] = info
    text = json.dumps(_typed_keys(shape), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _typed_keys(value: Any) -> Any:
    """`value` with every mapping's keys as text naming their YAML type: a user's YAML may key one
    mapping by an int, a date and a string at once, which json cannot sort, and `1` and "1" differ."""
    if isinstance(value, dict):
        return {f"{type(k).__name__}:{k!r}": _typed_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed_keys(v) for v in value]
    return value


def _without_paths(config: Any) -> Any:
    if not isinstance(config, dict) or not isinstance(config.get("data_files"), list):
        return config
    files = [
        {k: v for k, v in f.items() if k != "path"} if isinstance(f, dict) else f
        for f in config["data_files"]
    ]
    return {**config, "data_files": files}


def card_names_shards(card_text: str | None, files: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with the card's `default` config as datasets would read it: each split must
    list exactly the manifest's shards of that split (by name, no glob), and no other split.
    Empty: the card names the committed shards."""
    return _shard_problems(_front_matter(card_text), _shards_and_rows(files)[0])


def _shard_problems(meta: dict[str, Any], shards: dict[str, dict[str, Any]]) -> list[str]:
    config = _default_config(meta)
    if config is None:
        return ["the card has no single `default` config with data_files"]
    expected: dict[str, set[str]] = {}
    for path, facts in shards.items():
        expected.setdefault(facts["split"], set()).add(path)
    named: dict[str, set[str]] = {}
    for entry in config["data_files"]:
        paths = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            return [f"the card's data_files entry {entry!r} does not list its shards by name"]
        if len(set(paths)) != len(paths) or str(entry.get("split")) in named:
            return [f"the card's data_files name a shard or split twice ({entry.get('split')!r})"]
        named[str(entry.get("split"))] = set(paths)
    if named != expected:
        wrong = sorted(s for s in set(named) | set(expected) if named.get(s) != expected.get(s))
        return [f"the card's data_files do not name the committed shards of split(s) {', '.join(wrong)}"]
    return []


def _card_split_sizes(meta: dict[str, Any]) -> dict[str, Any]:
    info = meta.get("dataset_info")
    splits = info.get("splits") if isinstance(info, dict) else None
    if not isinstance(splits, list):
        return {}
    return {
        s.get("name"): s.get("num_examples") for s in splits if isinstance(s, dict) and s.get("num_examples")
    }


def _default_config(meta: dict[str, Any]) -> dict[str, Any] | None:
    configs = meta.get("configs")
    found = (
        [c for c in configs if isinstance(c, dict) and c.get("config_name") == "default"]
        if isinstance(configs, list)
        else []
    )
    if len(found) != 1 or not isinstance(found[0].get("data_files"), list):
        return None
    return found[0]


def verify_changed_revision(
    target_name: str,
    target: Any,
    commit: str,
    files: dict[str, dict[str, Any]],
    expected_features: dict[str, Any],
    first_columns: list[str],
    opened_shape: str,
    checked_at_parent: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Check a revision whose parent had been opened with `datasets` (by this verification, or by
    this check when its own parent had), without importing datasets: every shard carries the
    manifest's row count and the expected features (as verify_dataset_revision); the card as
    committed has the shape the earlier open read (`opened_shape`, card_shape) and names exactly
    the committed shards of each split; and the first row's `first_columns` of each non-empty
    split's first shard read with pyarrow. Raises PublishError saying what differs.

    `checked_at_parent`: path -> sha256 of the shards the commit kept from the parent, whose
    footers were checked there (the chain this check continues). Each is held to that sha256
    and the manifest's size at the new commit (one paths-info request per 500; a sha256 names the
    bytes, so their footer is the one checked); every other shard's footer is read. A local target
    reads every footer: its check of a kept file would hash the whole file."""
    shards, per_split = _shards_and_rows(files)
    kept = _kept_shards(target_name, shards, checked_at_parent or {})
    meta = _front_matter(committed_card(target_name, target, commit))
    problems = _shard_problems(meta, shards)
    if not problems and _card_split_sizes(meta) != {s: n for s, n in per_split.items() if n}:
        # datasets checks a download's split sizes against the card's (NonMatchingSplitsSizesError)
        problems.append(f"the card's dataset_info splits do not hold the manifest's rows {per_split}")
    if not problems and _shape(meta) != opened_shape:
        problems.append("the card is not shaped as the one datasets opened at the parent commit")
    if problems:
        raise PublishError(f"Verification of {target_name}@{commit[:12]} failed: " + "; ".join(problems))
    # The split's first row, as datasets would stream it: the first non-empty shard the card lists.
    first_shard = {}
    for entry in _default_config(meta)["data_files"]:
        listed = [path for path in entry["path"] if shards[path]["num_rows"]]
        if listed:
            first_shard[entry["split"]] = listed[0]
    if kept:  # the kept shards are at the new commit as the parent held them
        problems += target.verify(
            commit, [StagedFile(p, shards[p]["sha256"], shards[p]["size"], "") for p in kept]
        )
    to_read = {p: facts for p, facts in shards.items() if p not in kept or p in first_shard.values()}
    footers = target.parquet_footers(
        commit, sorted(to_read), first_row_columns=first_columns, first_row_of=set(first_shard.values())
    )
    problems += _footer_problems(to_read, footers, expected_features)
    for split, path in sorted(first_shard.items()):
        first = footers[path].first_row if path in footers else None
        if first is None or set(first) != set(first_columns):
            problems.append(f"split {split!r}: the first row of {path} does not read")
    if problems:
        raise PublishError(f"Verification of {target_name}@{commit[:12]} failed: " + "; ".join(problems[:5]))
    return per_split


def _kept_shards(
    target_name: str, shards: dict[str, dict[str, Any]], checked_at_parent: Mapping[str, str]
) -> set[str]:
    """The manifest's shards whose footers were checked at the parent under the sha256 the
    manifest names now (none on a local target)."""
    if is_local_target(target_name):
        return set()
    return {
        path
        for path, sha256 in checked_at_parent.items()
        if path in shards
        and shards[path].get("sha256") == sha256
        and isinstance(shards[path].get("size"), int)
    }


def committed_card(target_name: str, target: Any, commit: str) -> str | None:
    """The README.md committed at `commit` (on a local target, in that version's folder)."""
    if is_local_target(target_name):
        try:
            return (Path(target.versions) / commit / CARD).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
    return target.read_text(CARD, commit)
