"""The refresh-dataset flow end to end against the Hub-protocol server, with the real clients.

Upstream datasets are pushed with datasets' push_to_hub, refreshed through the Prefect flow to a
Hub repo or a local directory, and the published result is loaded back with datasets.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image as PILImage

from hubpress.errors import ConfigError, MissingTokenError, SourceError
from hubpress.flows.params import RefreshParams
from hubpress.flows.refresh_dataset import refresh_dataset
from hubpress.refresh.publish import shard_row_groups
from hubpress.shards.sizes import DEFAULT_ROW_GROUP_ROWS as ROW_GROUP_ROWS
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")


def png(width: int, height: int, colour=(10, 20, 30)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def push(rows: dict, features=None, name: str | None = None) -> str:
    from datasets import Dataset

    name = name or f"alice/upstream-{uuid.uuid4().hex[:8]}"
    Dataset.from_dict(rows, features=features).push_to_hub(name, token=WRITE_TOKEN)
    return name


def captioned_rows(count: int, offset: int = 0) -> tuple[dict, object]:
    """Rows with a caption column and a quality dict; every third caption is missing, and rows
    with an odd index score below the threshold."""
    from datasets import Features, Image, Value

    features = Features(
        {
            "image": Image(),
            "caption": Value("string"),
            "quality_assessment": {"aesthetic": Value("float64")},
        }
    )
    indices = range(offset, offset + count)
    rows = {
        "image": [{"bytes": png(8 + i, 6, (i, i, i)), "path": None} for i in indices],
        "caption": [None if i % 3 == 2 else f"caption {i}" for i in indices],
        "quality_assessment": [{"aesthetic": 6.0 if i % 2 == 0 else 4.0} for i in indices],
    }
    return rows, features


def hf_backend(dataset: str, tmp_path: Path, **options) -> dict:
    return {
        "id": options.pop("id", "up"),
        "type": "huggingface",
        "dataset_name": dataset,
        "caption_strategy": "huggingface",
        "metadata_backend": "huggingface",
        "caption_column": "caption",
        "cache_dir": str(tmp_path / "cache"),
        **options,
    }


QUALITY = {"filter_func": {"quality_thresholds": {"aesthetic": 5.0}}}


def fetch_json(hub, repo: str, path: str, revision: str) -> dict:
    return json.loads(hub.read_file("dataset", repo, path, revision))


def test_refresh_publishes_then_does_nothing_then_follows_upstream(hub, write_token, tmp_path):
    from datasets import load_dataset

    rows, features = captioned_rows(8)
    upstream = push(rows, features)
    config = hf_backend(upstream, tmp_path, huggingface=QUALITY)
    repo = f"alice/refreshed-{uuid.uuid4().hex[:8]}"
    params = RefreshParams(config=config, target=repo, seed=3)

    first = refresh_dataset(params)
    # kept: even index and a caption -> 0, 4, 6 (2 has no caption; odd ones score 4.0 < 5.0)
    assert first["commit"] and first["samples"] == {"train": 3} and first["skipped"] == {"train": 5}
    assert first["nothing_changed"] is False
    assert first["metadata_cache_reused"] == {"up": False}
    upstream_sha = hub.head("dataset", upstream)
    assert first["upstream"] == {"up": upstream_sha}

    ds = load_dataset(repo, split="train", revision=first["commit"], token=WRITE_TOKEN)
    assert ds.column_names == ["image", "caption", "width", "height", "source_index"]
    assert ds["caption"] == ["caption 0", "caption 4", "caption 6"]
    assert ds["source_index"] == [0, 4, 6]
    assert ds[1]["image"].size == (12, 6) and (ds[1]["width"], ds[1]["height"]) == (12, 6)

    manifest = fetch_json(hub, repo, "manifest.json", first["commit"])
    assert manifest["upstream"]["up"]["dataset_name"] == upstream
    assert manifest["upstream"]["up"]["revision_sha"] == upstream_sha
    assert manifest["counts"]["up"]["dropped"] == {"quality.aesthetic": 4, "no_caption": 1}
    assert manifest["backends"]["up"]["filter_func"]["quality_thresholds"] == {"aesthetic": 5.0}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert {"simpletuner_index.json", "simpletuner_dataloader.json"} <= set(manifest["files"])
    index = fetch_json(hub, repo, "simpletuner_index.json", first["commit"])
    assert index["source_index"] == {"0.jpg": 0, "1.jpg": 4, "2.jpg": 6}
    loader = fetch_json(hub, repo, "simpletuner_dataloader.json", first["commit"])
    assert loader == [
        {
            "id": repo.split("/")[1],
            "type": "huggingface",
            "dataset_type": "image",
            "dataset_name": repo,
            "split": "train",
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "cache_dir": f"cache/{repo.split('/')[1]}",
            "image_column": "image",
            "huggingface": {"caption_column": "caption", "width_column": "width", "height_column": "height"},
        }
    ]
    card = hub.read_file("dataset", repo, "README.md", first["commit"]).decode()
    assert upstream_sha in card and "quality.aesthetic" in card

    # Unchanged upstream, same config: no download, no build, no commit.
    hub.reset_stats()
    second = refresh_dataset(params)
    stats = hub.stats
    assert second["nothing_changed"] and second["commit"] is None and second["uploaded_bytes"] == 0
    assert "nothing changed upstream" in second["message"] and second["stage"] is None
    assert second["samples"] == {"train": 3}
    assert stats.commits == 0 and stats.upload_bytes == 0
    # the only file fetched is the target's manifest.json: no upstream data file was resolved
    assert stats.requests["resolve"] <= 2
    assert stats.download_bytes <= len(json.dumps(manifest, indent=2)) + 2
    assert hub.head("dataset", repo) == first["commit"]

    # Asked to tag, an unchanged run tags the head it left in place (once; again is a no-op).
    tagged = refresh_dataset(params.model_copy(update={"tag": "nightly-1"}))
    assert tagged["nothing_changed"] and tagged["tag"] == "nightly-1" and tagged["tag_created"] is True
    from huggingface_hub import HfApi

    tags = HfApi(token=WRITE_TOKEN).list_repo_refs(repo, repo_type="dataset").tags
    assert [(t.name, t.target_commit) for t in tags] == [("nightly-1", first["commit"])]
    again = refresh_dataset(params.model_copy(update={"tag": "nightly-1"}))
    assert again["tag_created"] is False and hub.head("dataset", repo) == first["commit"]

    # A new upstream commit: a new published commit whose manifest records the new sha.
    more, _ = captioned_rows(11)
    push(more, features, name=upstream)
    new_sha = hub.head("dataset", upstream)
    assert new_sha != upstream_sha
    third = refresh_dataset(params)
    assert third["commit"] and third["commit"] != first["commit"]
    assert third["samples"] == {"train": 4}  # + row 10
    assert third["metadata_cache_reused"] == {"up": False}
    manifest = fetch_json(hub, repo, "manifest.json", third["commit"])
    assert manifest["upstream"]["up"]["revision_sha"] == new_sha
    index = fetch_json(hub, repo, "simpletuner_index.json", third["commit"])
    assert index["source_index"]["3.jpg"] == 10


def test_streaming_refresh_to_a_local_directory_and_cache_reuse(hub, write_token, tmp_path):
    from datasets import load_dataset

    rows, features = captioned_rows(6)
    upstream = push(rows, features)
    out = tmp_path / "streamed"
    streamed = refresh_dataset(
        RefreshParams(config=hf_backend(upstream, tmp_path, streaming=True, **QUALITY), target=str(out))
    )
    assert streamed["samples"] == {"train": 2} and streamed["metadata_cache_reused"] == {"up": None}
    loaded = load_dataset(str(out), split="train")
    assert loaded["caption"] == ["caption 0", "caption 4"]

    # Non-streaming to another directory: the same rows; the second one reuses the metadata cache
    # (its config differs only in pretty_name, so it builds again but with the cached first phase).
    base = tmp_path / "plain"
    plain = refresh_dataset(RefreshParams(config=hf_backend(upstream, tmp_path, **QUALITY), target=str(base)))
    again = refresh_dataset(
        RefreshParams(
            config=hf_backend(upstream, tmp_path, **QUALITY), target=str(base), pretty_name="Renamed"
        )
    )
    assert plain["metadata_cache_reused"] == {"up": False}
    assert again["metadata_cache_reused"] == {"up": True} and again["commit"]
    assert load_dataset(str(base), split="train")["source_index"] == loaded["source_index"]
    shards = sorted(p.relative_to(out).as_posix() for p in (out / "data").glob("*.parquet"))
    assert shards and shards == sorted(
        p.relative_to(base).as_posix() for p in (base / "data").glob("*.parquet")
    )
    for shard in shards:  # streaming and not write the same bytes (so, content-named, the same names)
        assert (out / shard).read_bytes() == (base / shard).read_bytes()


def test_editing_mapping_loads_with_load_editing_dataset(hub, write_token, tmp_path):
    from datasets import Features, Image, Value

    from hubpress.api import load_editing_dataset

    features = Features({"original": Image(), "edited": Image(), "instruction": Value("string")})
    rows = {
        "original": [{"bytes": png(8, 8, (i, 0, 0)), "path": None} for i in range(3)],
        "edited": [{"bytes": png(8, 8, (0, i, 0)), "path": None} for i in range(3)],
        "instruction": ["make it green", "", "brighter"],
    }
    upstream = push(rows, features)
    config = hf_backend(
        upstream,
        tmp_path,
        caption_column="instruction",
        editing={"control_columns": ["original"], "target_column": "edited", "prompt_column": "instruction"},
    )
    out = tmp_path / "editing"
    result = refresh_dataset(RefreshParams(config=config, target=str(out)))
    # The empty prompt is kept as "", as publish-dataset keeps it (docs/refresh-semantics.md), and counted.
    assert result["samples"] == {"train": 3} and result["skipped"] == {"train": 0}
    ds = load_editing_dataset(str(out), split="train")
    assert ds.column_names == ["id", "control_images", "control_mask", "target_image", "prompt"]
    assert ds["prompt"] == ["make it green", "", "brighter"]
    assert ds["id"] == ["00000000", "00000001", "00000002"]
    assert ds[2]["control_images"][0].getpixel((0, 0)) == (2, 0, 0)
    assert ds[2]["target_image"].getpixel((0, 0)) == (0, 2, 0) and ds[0]["control_mask"] is None
    index = json.loads((out / "simpletuner_index.json").read_text())
    assert index["source_index"] == {"0.jpg": 0, "1.jpg": 1, "2.jpg": 2}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["up"]["empty_prompts"] == 1


def test_mixing_two_backends_with_a_seed_is_deterministic(hub, write_token, tmp_path):
    from datasets import load_dataset

    first_rows, features = captioned_rows(6)
    second_rows, _ = captioned_rows(6, offset=100)
    a, b = push(first_rows, features), push(second_rows, features)
    config = [
        hf_backend(a, tmp_path, id="a", probability=0.5),
        hf_backend(b, tmp_path, id="b", probability=0.5),
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds"},
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = refresh_dataset(RefreshParams(config=config, target=str(one), seed=7))
    r2 = refresh_dataset(RefreshParams(config=config, target=str(two), seed=7))
    assert r1["samples"] == r2["samples"] and r1["samples"]["train"] > 0
    shards = sorted(p.relative_to(one) for p in (one / "data").glob("*.parquet"))
    assert shards and all((one / s).read_bytes() == (two / s).read_bytes() for s in shards)

    ds = load_dataset(str(one), split="train")
    assert set(ds["backend_id"]) == {"a", "b"}
    index = json.loads((one / "simpletuner_index.json").read_text())
    assert list(index["backend"].values()) == ds["backend_id"]
    assert list(index["source_index"].values()) == ds["source_index"]
    manifest = json.loads((one / "manifest.json").read_text())
    assert manifest["mixing"] == {
        "probabilities": {"a": 0.5, "b": 0.5},
        "seed": 7,
        "stopping": "all_rows",
    }
    assert "Seed 7" in (one / "README.md").read_text()


def test_dry_run_sends_nothing(hub, write_token, tmp_path):
    rows, features = captioned_rows(3)
    upstream = push(rows, features)
    repo = f"alice/dry-{uuid.uuid4().hex[:8]}"
    hub.reset_stats()
    result = refresh_dataset(RefreshParams(config=hf_backend(upstream, tmp_path), target=repo, dry_run=True))
    assert result["dry_run"] and result["commit"] is None and result["uploaded_bytes"] == 0
    assert any(p.startswith("data/train-") and p.endswith(".parquet") for p in result["plan"]["added"])
    assert hub.stats.commits == 0 and hub.stats.upload_bytes == 0
    assert hub.head("dataset", repo) is None


def test_errors_before_any_work(hub, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = str(tmp_path / "out")
    with pytest.raises(MissingTokenError):  # a Hub target without a token fails first
        refresh_dataset(RefreshParams(config=hf_backend("alice/x", tmp_path), target="alice/target"))
    from datasets import Dataset

    private = f"alice/private-{uuid.uuid4().hex[:8]}"
    Dataset.from_dict({"caption": ["x"]}).push_to_hub(private, token=WRITE_TOKEN, private=True)
    with pytest.raises(SourceError, match="private"):
        refresh_dataset(RefreshParams(config=hf_backend(private, tmp_path), target=out))
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    with pytest.raises(SourceError, match=r"'alice/does-not-exist' not found at http://127\.0\.0\.1"):
        refresh_dataset(RefreshParams(config=hf_backend("alice/does-not-exist", tmp_path), target=out))
    rows, features = captioned_rows(2)
    upstream = push(rows, features)
    with pytest.raises(SourceError, match="Revision 'nope' not found"):
        refresh_dataset(RefreshParams(config=hf_backend(upstream, tmp_path, revision="nope"), target=out))
    with pytest.raises(
        ConfigError, match=r"caption_column='nope' not found .* its columns are \['caption', 'image'"
    ):
        refresh_dataset(
            RefreshParams(config=hf_backend(upstream, tmp_path, caption_column="nope"), target=out)
        )
    bad_index = {"composite_image_config": {"enabled": True, "image_count": 2, "select_index": 2}}
    with pytest.raises(ConfigError, match="select_index=2 is out of range"):
        refresh_dataset(RefreshParams(config=hf_backend(upstream, tmp_path, **bad_index), target=out))
    assert not Path(out).exists()


def test_cli_refresh_json(hub, write_token, tmp_path):
    from typer.testing import CliRunner

    from hubpress.commands.cli import app

    rows, features = captioned_rows(3)
    upstream = push(rows, features)
    config_file = tmp_path / "multidatabackend.json"
    config_file.write_text(json.dumps([hf_backend(upstream, tmp_path)]))
    out = tmp_path / "cli-out"
    runner = CliRunner()
    first = runner.invoke(app, ["refresh", str(config_file), str(out), "--seed", "1", "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout.strip().splitlines()[-1])
    assert data["samples"] == {"train": 2} and data["skipped"] == {"train": 1}
    assert {
        "target",
        "commit",
        "uploaded_files",
        "uploaded_bytes",
        "unchanged_files",
        "deleted_files",
        "plan",
    } <= set(data)
    second = runner.invoke(app, ["refresh", str(config_file), str(out), "--seed", "1"])
    assert second.exit_code == 0 and "nothing changed upstream" in second.stdout


def _shards_of(rows, max_size: int) -> list[list[int]]:
    shards, current = [], []
    for group, ends in shard_row_groups(rows, max_size):
        current += [row["source_index"] for row in group]
        if ends:
            shards.append(current)
            current = []
    return shards


def test_refresh_shard_boundaries_are_content_defined():
    def rows(indices):
        return [
            {"source_index": i, "image": {"bytes": b"x" * (500 + 37 * (i % 11)), "path": None}}
            for i in indices
        ]

    before = _shards_of(rows(range(2000)), 60_000)
    assert len(before) > 10 and [i for s in before for i in s] == list(range(2000))
    # The shard cap holds; shards average about half of it.
    sizes = [sum(128 + 500 + 37 * (i % 11) for i in s) for s in before]
    assert max(sizes) <= 60_000 and 20_000 < sum(sizes) / len(sizes) < 45_000
    # Rows dropped near the start (a changed filter) and in the middle: the shards that hold them
    # change, and at most the next one (when a shard was cut at the cap, the next starts where
    # the cap fell); every other shard comes out again, row for row. Fixed-size shards would all
    # shift after the first dropped row.
    dropped = {3, 4, 1000}
    after = _shards_of(rows(i for i in range(2000) if i not in dropped), 60_000)
    untouched = [s for s in before if not dropped & set(s)]
    assert len(untouched) == len(before) - 2
    assert sum(s not in after for s in untouched) <= 2
    # Row groups never exceed the viewer-sized bound.
    assert all(len(group) <= ROW_GROUP_ROWS for group, _ in shard_row_groups(rows(range(500)), 10**9))


def test_a_changed_filter_uploads_only_the_shards_it_touches(hub, write_token, tmp_path):
    rows, features = captioned_rows(240)
    upstream = push(rows, features)
    repo = f"alice/cdc-{uuid.uuid4().hex[:8]}"
    first = refresh_dataset(
        RefreshParams(config=hf_backend(upstream, tmp_path), target=repo, max_shard_size="12KB")
    )
    shards = [p for p in first["plan"]["added"] if p.startswith("data/")]
    assert len(shards) > 4
    # Now rows 0..3 (the narrowest images) are filtered out: only the first shard changes.
    second = refresh_dataset(
        RefreshParams(
            config=hf_backend(upstream, tmp_path, filter_func={"min_width": 12}),
            target=repo,
            max_shard_size="12KB",
        )
    )
    changed = [p for p in second["plan"]["added"] + second["plan"]["changed"] if p.startswith("data/")]
    deleted = [p for p in second["plan"]["deleted"] if p.startswith("data/")]
    assert 1 <= len(changed) <= 2 and 1 <= len(deleted) <= 2, (changed, deleted)
    assert len([p for p in second["plan"]["unchanged"] if p.startswith("data/")]) >= len(shards) - 2
    from datasets import load_dataset

    loaded = load_dataset(repo, split="train", revision=second["commit"], token=WRITE_TOKEN)
    assert min(loaded["width"]) >= 12 and loaded["source_index"] == sorted(loaded["source_index"])


def test_a_published_refresh_is_verified_against_its_manifest(hub, write_token, tmp_path):
    """The flow checks the new commit (footers' row counts and features, datasets opens it); the
    same check fails, naming the shard, when the committed data is not what the manifest says."""
    from hubpress.errors import PublishError
    from hubpress.refresh.config import parse_refresh_config
    from hubpress.refresh.publish import verify_refresh
    from hubpress.settings import get_settings
    from hubpress.targets.publish import open_target

    rows, features = captioned_rows(9)
    upstream = push(rows, features)
    repo = f"alice/verified-{uuid.uuid4().hex[:8]}"
    raw = hf_backend(upstream, tmp_path, **QUALITY)
    result = refresh_dataset(RefreshParams(config=raw, target=repo))
    assert result["samples"] == {"train": 3}
    manifest = fetch_json(hub, repo, "manifest.json", result["commit"])
    target = open_target(repo, "dataset", get_settings(), token=WRITE_TOKEN)
    config = parse_refresh_config(raw)
    assert verify_refresh(repo, target, result["commit"], config, manifest, WRITE_TOKEN) == {"train": 3}

    shard = next(p for p in manifest["files"] if p.startswith("data/"))
    manifest["files"][shard]["num_rows"] = 4
    with pytest.raises(PublishError, match=rf"{shard}: 3 rows committed, 4 in the manifest"):
        verify_refresh(repo, target, result["commit"], config, manifest, WRITE_TOKEN)
    with pytest.raises(PublishError, match="features are not the expected ones"):
        other = parse_refresh_config(
            {
                **raw,
                "editing": {
                    "control_columns": ["image"],
                    "target_column": "image",
                    "prompt_column": "caption",
                },
            }
        )
        verify_refresh(
            repo,
            target,
            result["commit"],
            other,
            fetch_json(hub, repo, "manifest.json", result["commit"]),
            WRITE_TOKEN,
        )


def test_a_dataset_hubpress_published_refreshes_with_its_control_images_list(hub, write_token, tmp_path):
    """The qflux schema's `control_images` holds a list of images: a refresh naming it as its
    control column read it as one image, and left every row out as unreadable_image."""
    from datasets import load_dataset

    from hubpress.flows.params import PublishDatasetParams
    from hubpress.flows.publish_dataset import publish_dataset
    from hubpress.testdata.synth import write_dataset

    source = tmp_path / "src"
    write_dataset(source, samples=4, image_size=16)
    upstream = f"alice/published-{uuid.uuid4().hex[:8]}"
    publish_dataset(PublishDatasetParams(source=str(source), target=upstream))
    config = hf_backend(
        upstream,
        tmp_path,
        caption_column="prompt",
        editing={
            "control_columns": ["control_images"],
            "target_column": "target_image",
            "prompt_column": "prompt",
            "id_column": "id",
        },
    )
    out = tmp_path / "again"
    result = refresh_dataset(RefreshParams(config=config, target=str(out)))
    assert result["samples"] == {"train": 4} and result["skipped"] == {"train": 0}, result
    before = load_dataset(upstream, split="train")
    after = load_dataset(str(out), split="train")
    assert after["id"] == before["id"] and after["prompt"] == before["prompt"]
    for was, now in zip(before, after, strict=True):
        assert len(now["control_images"]) == len(was["control_images"]) >= 1
        assert [im.tobytes() for im in now["control_images"]] == [
            im.tobytes() for im in was["control_images"]
        ]
        assert now["target_image"].tobytes() == was["target_image"].tobytes()
