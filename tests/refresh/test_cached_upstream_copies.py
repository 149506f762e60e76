"""A refresh's cached copies of upstream files are held to what the upstream lists before use.

huggingface_hub's cache is trusted by name: a copy already at `snapshots/<sha>/<path>` is handed
over without a request. A copy written there before hubpress checked downloads (an older release),
by another tool, or damaged on disk was read as the upstream file at that commit, and its rows
published as the upstream's, every run. Each cached copy is now held to the listing of the pinned
commit (size, then sha256 or git blob id) before it is read; one that differs is removed and
fetched again, and the fetched file is held to the listing as any download is."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import HUB_URL, WRITE_TOKEN, run_cli

DATA = "data/train-00000-of-00001.parquet"


def _parquet(caption: str) -> bytes:
    """Three rows of one caption and one small PNG, as parquet with the features `datasets` reads;
    two captions of one length give files of one size."""
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(png, format="PNG")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array([{"bytes": png.getvalue(), "path": None}] * 3, type=image)
    table = pa.table({"image": images, "caption": [caption] * 3})
    features = {"image": {"_type": "Image"}, "caption": {"dtype": "string", "_type": "Value"}}
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none")
    return buf.getvalue()


def _upstream(files: dict[str, bytes]) -> tuple[str, str]:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    repo = f"alice/cached-upstream-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo, repo_type="dataset")
    ops = [CommitOperationAdd(path, data) for path, data in files.items()]
    return repo, api.create_commit(repo, ops, commit_message="rows", repo_type="dataset").oid


def _plant(cache: Path, repo: str, sha: str, path: str, data: bytes) -> Path:
    """A copy in huggingface_hub's cache layout, as another tool (or an older hubpress) left it."""
    planted = cache / f"datasets--{repo.replace('/', '--')}" / "snapshots" / sha / path
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(data)
    return planted


@pytest.mark.usefixtures("prefect_harness")
def test_a_cached_upstream_parquet_file_that_is_not_the_listed_one_is_fetched_again(
    hub, write_token, tmp_path
):
    listed, planted_rows = _parquet("the upstream row"), _parquet("a planted row!!!")
    assert len(listed) == len(planted_rows)  # same size: only the hash can tell
    repo, sha = _upstream({DATA: listed})
    cache = tmp_path / "cache"
    planted = _plant(cache, repo, sha, DATA, planted_rows)
    backend = {"id": "up", "type": "huggingface", "dataset_name": repo, "revision": sha}
    backend |= {"caption_column": "caption", "streaming": False, "cache_dir": str(cache)}
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps([backend]))
    out = tmp_path / "out"

    code, stdout, stderr = run_cli("refresh", str(config), str(out), "--json")

    assert code == 0, stderr
    assert "Traceback" not in stderr
    from datasets import load_dataset

    published = load_dataset(str(out), split="train")
    assert set(published["caption"]) == {"the upstream row"}, published["caption"]
    assert planted.read_bytes() == listed  # the cache holds the listed file now


def test_a_cached_media_copy_that_is_not_the_listed_one_is_not_read(hub, write_token):
    """The local path `datasets` gives for an imagefolder's image without streaming: a copy in the
    snapshot whose bytes are not the listed file's is read from the upstream again."""
    from huggingface_hub import constants

    from hubpress.refresh.media import MediaOrigin

    honest, planted_bytes = b"\x89PNG honest image bytes", b"\x89PNG planted imagebytes"
    assert len(honest) == len(planted_bytes)
    repo, sha = _upstream({"train/ok.png": honest, "train/big.png": b"x" * 40})
    planted = _plant(Path(constants.HF_HUB_CACHE), repo, sha, "train/ok.png", planted_bytes)
    shorter = _plant(Path(constants.HF_HUB_CACHE), repo, sha, "train/big.png", b"x" * 10)
    origin = MediaOrigin(repo, sha, HUB_URL, WRITE_TOKEN)

    assert origin.read(str(planted)) == honest
    assert origin.read(str(shorter)) == b"x" * 40
    assert not planted.exists() or planted.read_bytes() == honest


@pytest.mark.usefixtures("prefect_harness")
def test_an_upstream_listing_whose_sizes_are_not_numbers_is_one_line(
    hub, write_token, hostile_proxy, tmp_path
):
    """The tree listing the upstream's files are held to, answered with `"size": "lots"`: one line
    naming the upstream, exit 1, no traceback, nothing published."""
    repo, sha = _upstream({DATA: _parquet("the upstream row")})
    hostile_proxy.arm(r"^GET /api/datasets/[^ ]*/tree/", "bad_size", count=20)
    backend = {"id": "up", "type": "huggingface", "dataset_name": repo, "revision": sha}
    backend |= {"caption_column": "caption", "streaming": False, "cache_dir": str(tmp_path / "cache")}
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps([backend]))
    out = tmp_path / "out"

    code, stdout, stderr = run_cli("refresh", str(config), str(out))

    assert hostile_proxy.fired, "the listing was not asked through the proxy"
    assert code == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repo in errors[0] and "listing" in errors[0], stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))


def test_media_of_many_mixed_upstreams_is_held_to_listings_made_once(hub, write_token, hostile_proxy):
    """A configuration mixing more upstreams than the listings kept process-wide (four) reads
    their rows in turns: an upstream whose listing made at its open was let go is listed once
    more for its media, however its reads alternate with the others' (not once per turn: a
    recursive tree listing per row)."""
    from hubpress.refresh.media import MediaOrigin
    from hubpress.refresh.upstream_listing import hold_to_listing

    image = b"\x89PNG one image"
    origins = []
    for _ in range(6):
        repo, sha = _upstream({"train/a.png": image})
        hold_to_listing(repo, sha, WRITE_TOKEN, hostile_proxy.url)  # as each backend's open does
        origins.append((MediaOrigin(repo, sha, hostile_proxy.url, WRITE_TOKEN), repo, sha))
    hostile_proxy.clear()

    for _turn in range(3):
        for origin, repo, sha in origins:
            assert origin.read(f"hf://datasets/{repo}@{sha}/train/a.png") == image

    # The upstream's listing is recursive (HfFileSystem's own look at a file's folder is not).
    listings = [line for line in hostile_proxy.requests if "/tree/" in line and "recursive=true" in line]
    listed = [line.split("/tree/")[0] for line in listings]
    assert len(listed) == len(set(listed)) <= len(origins), listings


@pytest.mark.usefixtures("prefect_harness")
def test_a_cached_copy_linked_out_of_the_cache_is_not_read_and_its_target_is_kept(hub, write_token, tmp_path):
    """A snapshot entry another tool made a link to a file of its own, outside the cache (a
    user's edited copy): it is not the listed file, so it is not read; the link goes, and the
    file it points to, which is not the cache's to remove, stays."""
    listed, theirs = _parquet("the upstream row"), _parquet("their own row!!!")
    repo, sha = _upstream({DATA: listed})
    cache = tmp_path / "cache"
    mine = tmp_path / "their-files" / "train.parquet"
    mine.parent.mkdir()
    mine.write_bytes(theirs)
    entry = cache / f"datasets--{repo.replace('/', '--')}" / "snapshots" / sha / DATA
    entry.parent.mkdir(parents=True)
    entry.symlink_to(mine)
    backend = {"id": "up", "type": "huggingface", "dataset_name": repo, "revision": sha}
    backend |= {"caption_column": "caption", "streaming": False, "cache_dir": str(cache)}
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps([backend]))
    out = tmp_path / "out"

    code, _stdout, stderr = run_cli("refresh", str(config), str(out), "--json")

    assert code == 0, stderr
    assert mine.read_bytes() == theirs  # not the cache's: kept
    from datasets import load_dataset

    published = load_dataset(str(out), split="train")
    assert set(published["caption"]) == {"the upstream row"}, published["caption"]
