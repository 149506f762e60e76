"""A refresh costs what changed upstream: every shard is keyed by its rows' content with
publish-dataset's rule (hubpress.shards.keys, hubpress.shards.reuse), so a refresh whose upstream
changed in a few rows builds, reads again and sends only the shards that hold them, and publishes
exactly what a refresh from scratch would."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from hubpress.errors import SourceError
from hubpress.flows.params import RefreshParams
from hubpress.flows.refresh_dataset import refresh_dataset
from hubpress.refresh.shards import (
    RefreshShardPlan,
    build_refresh_shards,
    plan_refresh_shards,
    refresh_shard_key,
    row_digest,
)
from hubpress.settings import get_settings
from hubpress.shards.boundaries import ShardBounds
from hubpress.shards.shard_store import ShardStore
from hubpress.shards.staging import Staging
from tests.conftest import WRITE_TOKEN, run_cli
from tests.refresh.test_refresh_flow import fetch_json, hf_backend

ROWS = 120
CHANGED = 57


def noise_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16 + seed % 7, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def upstream_rows(changed: frozenset[int] = frozenset()) -> tuple[dict, object]:
    """Rows of about 1 KB images (noise, so shards are mostly image bytes); `changed` rows get
    another image and caption."""
    from datasets import Features, Image, Value

    features = Features({"image": Image(), "caption": Value("string")})
    rows = {
        "image": [{"bytes": noise_png(i + (1000 if i in changed else 0)), "path": None} for i in range(ROWS)],
        "caption": [f"caption {i}" + (" (edited)" if i in changed else "") for i in range(ROWS)],
    }
    return rows, features


def push_files(rows: dict, features, name: str | None = None) -> str:
    """Upstream as six parquet files, as a large dataset is many: editing a row rewrites one."""
    from datasets import Dataset

    name = name or f"alice/upstream-{uuid.uuid4().hex[:8]}"
    Dataset.from_dict(rows, features=features).push_to_hub(name, token=WRITE_TOKEN, num_shards=6)
    return name


def shard_rows(hub, repo: str, path: str, commit: str) -> list[int]:
    data = hub.read_file("dataset", repo, path, commit)
    return pq.read_table(io.BytesIO(data), columns=["source_index"]).column(0).to_pylist()


def data_files(manifest: dict) -> dict[str, tuple[str, str]]:
    return {p: (f["sha256"], f["key"]) for p, f in manifest["files"].items() if p.startswith("data/")}


@pytest.mark.usefixtures("prefect_harness")
def test_a_few_changed_upstream_rows_rebuild_and_send_only_their_shards(hub, write_token, tmp_path):
    rows, features = upstream_rows()
    upstream = push_files(rows, features)
    config = hf_backend(upstream, tmp_path)
    repo = f"alice/reuse-{uuid.uuid4().hex[:8]}"
    staging = tmp_path / "staging"
    params = RefreshParams(config=config, target=repo, max_shard_size="24KB", staging=str(staging))

    hub.reset_stats()
    first = refresh_dataset(params)
    first_sent = hub.stats.upload_bytes
    shards = sorted(p for p in first["plan"]["added"] if p.startswith("data/"))
    assert len(shards) >= 6
    assert (first["shards"], first["shards_built"], first["shards_reused"]) == (len(shards), len(shards), 0)
    assert first["shards_sent"] == len(shards)
    # The target held nothing: each shard was written as its rows were read, each row read once.
    assert first["source_bytes_read"] == first["source_bytes"] > 0
    assert not list(staging.glob("shards/*/*.parquet"))  # the target holds them: no second copy kept
    holding = {p: shard_rows(hub, repo, p, first["commit"]) for p in shards}
    (with_changed,) = [p for p, indices in holding.items() if CHANGED in indices]
    ordered = sorted(shards, key=lambda p: holding[p][0])
    may_move = {with_changed, *ordered[ordered.index(with_changed) + 1 :][:1]}  # its shard, at most the next

    # Upstream changes one row's image and caption: a new upstream commit, one of its files rewritten.
    changed, _ = upstream_rows(frozenset({CHANGED}))
    push_files(changed, features, name=upstream)

    # A dry run through the CLI: the changed shards are built and sealed in staging, nothing is sent.
    config_file = tmp_path / "multidatabackend.json"
    config_file.write_text(json.dumps([config]))
    hub.reset_stats()
    code, out, err = run_cli(
        "refresh",
        str(config_file),
        repo,
        "--max-shard-size",
        "24KB",
        "--staging",
        str(staging),
        "--dry-run",
        "--json",
    )
    assert code == 0, err
    dry = json.loads(out)
    built, total = dry["shards_built"], dry["shards"]
    assert abs(total - len(shards)) <= 1 and 1 <= built <= 2, dry
    # Media read: the rows of the one rewritten upstream file (1/6), then the rebuilt shards' rows;
    # the other files' rows are planned from what the first refresh learnt of them.
    assert 0 < dry["source_bytes_read"] < dry["source_bytes"] / 2, dry
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0
    sealed = sorted(staging.glob("shards/*/*.parquet"))
    assert len(sealed) == built

    # The refresh itself builds nothing more (the dry run sealed them) and sends only those shards.
    hub.reset_stats()
    second = refresh_dataset(params)
    assert second["commit"] and second["shards"] == total
    assert (second["shards_built"], second["shards_reused_from_stage"]) == (0, built)
    assert second["shards_reused"] == total and second["shards_sent"] == built
    sent = sorted(p for p in second["uploaded_files"] if p.startswith("data/"))
    assert {f"{p.stem[:16]}" for p in sealed} == {p.split("-", 1)[1][:16] for p in sent}
    gone = set(second["plan"]["deleted"])
    assert with_changed in gone and gone <= may_move, (gone, may_move)
    assert len(shards) - len(gone) + built == total
    assert set(shards) - gone <= set(second["plan"]["unchanged"])
    sizes = {p: len(hub.read_file("dataset", repo, p, second["commit"])) for p in second["uploaded_files"]}
    assert hub.stats.upload_bytes <= sum(sizes.values()) and hub.stats.upload_bytes < first_sent / 2
    from hubpress.flows.refresh_dataset import _summary  # the refresh-summary artifact's text

    assert f"0 of {total} shards rebuilt ({total} reused)" in _summary(second)
    # No media read at all: every upstream file's rows were read before, and nothing was built.
    assert second["source_bytes_read"] == 0 and second["source_bytes"] > 0

    # The same as a refresh from scratch, into another repo with empty staging: the same files.
    # Through the CLI's text output, which says what was reused.
    scratch_repo = f"alice/scratch-{uuid.uuid4().hex[:8]}"
    scratch_config = tmp_path / "scratch.json"
    scratch_config.write_text(json.dumps([hf_backend(upstream, tmp_path / "fresh")]))
    code, out, err = run_cli(
        "refresh",
        str(scratch_config),
        scratch_repo,
        "--max-shard-size",
        "24KB",
        "--staging",
        str(tmp_path / "fresh-staging"),
    )
    assert code == 0, err
    assert f"{total} of {total} shards rebuilt (0 reused)" in out, out
    scratch = {"commit": hub.head("dataset", scratch_repo)}
    incremental = fetch_json(hub, repo, "manifest.json", second["commit"])
    from_scratch = fetch_json(hub, scratch_repo, "manifest.json", scratch["commit"])
    assert data_files(incremental) == data_files(from_scratch)
    assert incremental["counts"] == from_scratch["counts"]
    for name in ("simpletuner_index.json",):
        assert fetch_json(hub, repo, name, second["commit"]) == fetch_json(
            hub, scratch_repo, name, scratch["commit"]
        )
    from datasets import load_dataset

    loaded = load_dataset(repo, split="train", revision=second["commit"], token=WRITE_TOKEN)
    assert loaded["source_index"] == list(range(ROWS))
    assert loaded[CHANGED]["caption"] == f"caption {CHANGED} (edited)"


def _rows(count: int, colour: int = 7) -> list[dict]:
    return [
        {"image": {"bytes": bytes([i % 251, colour]) * (40 + i % 17), "path": None}, "source_index": i}
        for i in range(count)
    ]


def test_only_the_rows_of_the_shards_to_build_are_read_again(tmp_path):
    """Pass 2 asks the backend for exactly the rows of the shards to build, and a row that reads
    back with other content than the first read fails the shard with a clear error."""
    from datasets import Features, Image, Value

    features = Features({"image": Image(), "source_index": Value("int64")})
    bounds = ShardBounds.of("2KB")
    rows = _rows(200)
    plans = plan_refresh_shards(iter(rows), dict, features, bounds)
    assert len(plans) > 4 and [p.start for p in plans] == sorted(p.start for p in plans)
    assert sum(p.num_rows for p in plans) == 200
    store = ShardStore(Staging(str(tmp_path / "staging"), get_settings({"cache_dir": str(tmp_path / "c")})))
    asked: list[int] = []

    def read_again(positions: list[int]):
        asked.extend(positions)
        return (rows[p] for p in positions)

    def to_table(group):
        import pyarrow as pa

        return pa.Table.from_pylist(group, schema=features.arrow_schema)

    target = plans[2]
    (sealed,) = build_refresh_shards(store, [target], read_again, dict, to_table, features, bounds)
    assert asked == list(target.positions)
    assert sealed.key == target.key and sealed.num_rows == target.num_rows
    assert store.find([target.key]) == {target.key: sealed}

    changed = [dict(r) for r in rows]
    changed[plans[3].start]["image"] = {"bytes": b"other", "path": None}
    with pytest.raises(SourceError, match=r"differ from the first read"):
        build_refresh_shards(
            store, [plans[3]], lambda ps: (changed[p] for p in ps), dict, to_table, features, bounds
        )
    assert store.find([plans[3].key]) == {}  # nothing sealed under the planned key


_published = st.fixed_dictionaries(
    {
        "image": st.fixed_dictionaries({"bytes": st.binary(min_size=1, max_size=64), "path": st.none()}),
        "caption": st.text(max_size=20),
        "source_index": st.integers(0, 10**6),
    }
)


@settings(max_examples=60, deadline=None)
@given(row=_published, flip=st.integers(0, 63))
def test_a_row_digest_is_its_content(row, flip):
    """Equal content, equal digest (copies, another key order); one byte, the caption or the
    row's index changed, another digest."""
    copy = {"source_index": row["source_index"], "caption": row["caption"], "image": dict(row["image"])}
    copy["image"]["bytes"] = bytes(bytearray(row["image"]["bytes"]))
    assert row_digest(copy) == row_digest(row)
    data = bytearray(row["image"]["bytes"])
    data[flip % len(data)] ^= 1
    assert row_digest({**row, "image": {"bytes": bytes(data), "path": None}}) != row_digest(row)
    assert row_digest({**row, "caption": row["caption"] + "!"}) != row_digest(row)
    assert row_digest({**row, "source_index": row["source_index"] + 1}) != row_digest(row)


def test_a_refresh_shard_key_covers_the_options_that_shape_its_bytes():
    from datasets import Features, Image, Value

    features = Features({"image": Image(), "source_index": Value("int64")})
    rows = [["up:1", "a" * 64], ["up:2", "b" * 64]]
    key = refresh_shard_key(features, ShardBounds.of("2KB"), [2], rows)
    assert key == refresh_shard_key(features, ShardBounds.of("2KB"), [2], [list(r) for r in rows])
    other_features = Features({"image": Image(), "source_index": Value("int32")})
    assert key != refresh_shard_key(other_features, ShardBounds.of("2KB"), [2], rows)
    assert key != refresh_shard_key(features, ShardBounds.of("2KB", row_group_rows=1), [1, 1], rows)
    assert key != refresh_shard_key(features, ShardBounds.of("2KB"), [2], rows[::-1])
    plan = RefreshShardPlan(key, 0, (2,), 10)
    assert plan.path_in_repo == f"data/train-{key[:16]}.parquet"


def _folder(root, count: int, seed: int = 0):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"img{i:03d}.png").write_bytes(noise_png(seed + i))
        (root / f"img{i:03d}.txt").write_text(f"caption {seed + i}")
    return root


def _refresh_folders(raw: list, out, staging: Staging):
    """One refresh with the plain functions the flow's tasks wrap, to a local directory."""
    import tempfile

    from hubpress.refresh.card import render_refresh_card
    from hubpress.refresh.config import parse_refresh_config
    from hubpress.refresh.lineage import (
        RefreshOptions,
        config_fingerprint,
        stage_fingerprint,
        upstream_revisions,
    )
    from hubpress.refresh.publish import build_refresh
    from hubpress.shards.runs import RunStage, release_published
    from hubpress.shards.sizes import parse_size
    from hubpress.targets.publish import open_target, publish_files

    config = parse_refresh_config(raw)
    options = RefreshOptions(target=str(out), max_shard_size=parse_size("8KB"))
    revisions = upstream_revisions(config, None)
    config_fp = config_fingerprint(config, options)
    target = open_target(str(out), "dataset", staging.settings)
    stage_fp = stage_fingerprint(revisions, config_fp, options.seed)
    with RunStage(staging) as stage, tempfile.TemporaryDirectory() as tmp:
        staged = build_refresh(
            config, options, revisions, config_fp, stage_fp, staging, None, stage=stage, target=target
        )
        outcome = publish_files(
            target,
            staged.files,
            target_name=str(out),
            message="refresh",
            card=lambda existing: render_refresh_card(existing, staged.card),
            materialise=lambda f: staging.local_copy(f, tmp),
        )
        release_published(staging, stage, [c.plan.key for c in staged.build_plan.choices])
    return staged, outcome


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_mixed_refresh_of_folders_rebuilds_only_the_changed_shard(tmp_path, where, request):
    """Two local backends mixed, staging local or on S3: one image replaced in one folder rebuilds
    its shard (at most the next too), read again from that folder (the rows of the mixed order the
    shard holds), and the refresh equals one from scratch."""
    if where == "s3":
        _, bucket = request.getfixturevalue("s3")
        uris = [f"s3://{bucket}/stage", f"s3://{bucket}/fresh"]
    else:
        uris = [str(tmp_path / "stage"), str(tmp_path / "fresh")]
    staging, fresh = (Staging(uri, get_settings({"cache_dir": str(tmp_path / "cache")})) for uri in uris)
    a, b = _folder(tmp_path / "a", 40), _folder(tmp_path / "b", 30, seed=500)
    raw = [
        {"id": "a", "type": "local", "instance_data_dir": str(a), "probability": 0.6},
        {"id": "b", "type": "local", "instance_data_dir": str(b), "probability": 0.4},
    ]
    out = tmp_path / "out"
    first, _ = _refresh_folders(raw, out, staging)
    count = len(first.build_plan.choices)
    assert count >= 4 and first.build_plan.count("build") == count

    (a / "img017.png").write_bytes(noise_png(9999))  # another image: a new "revision" of folder a
    second, outcome = _refresh_folders(raw, out, staging)
    built = second.build_plan.count("build")
    assert 1 <= built <= 2 and second.build_plan.count("target") == len(second.build_plan.choices) - built
    sent = [p for p in outcome.uploaded_files if p.startswith("data/")]
    assert len(sent) == built

    scratch, _ = _refresh_folders(raw, tmp_path / "scratch", fresh)
    assert data_files(second.manifest) == data_files(scratch.manifest)
    index = json.loads((out / "simpletuner_index.json").read_text())
    assert index == json.loads((tmp_path / "scratch" / "simpletuner_index.json").read_text())


def test_row_facts_hold_only_for_the_same_file_place_and_rows(tmp_path):
    """Facts are found by the file's content id (huggingface_hub's blob name), its place in the
    dataset and the configuration, and only for the rows phase 1 kept: anything else reads again."""
    from hubpress.refresh.report import RefreshReport
    from hubpress.refresh.row_facts import FROM_FACTS, ROW_FACTS, RowFacts, file_identity, replay

    blob = "ab" * 32
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / blob).write_bytes(b"parquet")
    (tmp_path / "snapshot.parquet").symlink_to(tmp_path / "blobs" / blob)
    assert file_identity(str(tmp_path / "snapshot.parquet")) == blob
    assert file_identity(str(tmp_path / "blobs" / blob)) == blob
    assert file_identity(str(tmp_path / "snapshot.parquet.copy")) is None  # not a cache copy

    facts = RowFacts(tmp_path / "facts", "c" * 32, lambda row: ("d" * 64, 10))
    entries = [[3, "d" * 64, 10, False], [5, None, ["unreadable_image"]], [8, "e" * 64, 12, True]]
    facts.save(blob, 0, entries)
    assert facts.load(blob, 0, [3, 5, 8]) == entries
    assert facts.load(blob, 0, [3, 8]) is None  # phase 1 kept other rows
    assert facts.load(blob, 100, [3, 5, 8]) is None  # the file moved in the dataset
    assert RowFacts(tmp_path / "facts", "f" * 32, facts.of).load(blob, 0, [3, 5, 8]) is None  # other config

    report = RefreshReport("up")
    rows = replay(entries, report)
    assert rows == [
        {"source_index": 3, ROW_FACTS: ("d" * 64, 10), FROM_FACTS: True},
        {"source_index": 8, ROW_FACTS: ("e" * 64, 12), FROM_FACTS: True},
    ]
    assert report.dropped == {"unreadable_image": 1} and report.kept == 2
