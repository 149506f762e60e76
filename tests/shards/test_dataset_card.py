"""The dataset card and manifest: datasets' YAML, user edits kept, stable bytes, no secrets."""

from __future__ import annotations

import json

import yaml
from pydantic import SecretStr

from hubpress.shards.card import (
    DatasetCardInfo,
    build_manifest,
    render_dataset_card,
    summarize_split,
)
from hubpress.shards.cards import BEGIN, END, split_front_matter
from hubpress.shards.editing import editing_features
from hubpress.shards.shards import plan_shards, write_shard
from hubpress.shards.staging import json_bytes
from hubpress.sources.models import Correction, IntakeReport, SkippedSample, SplitManifest
from tests.shard_helpers import make_sample


def build(tmp_path, counts=None, out=None):
    """Shards for a small train/test dataset; returns (report, built shards, card info)."""
    counts = counts or {"train": 3, "test": 2}
    out = out or tmp_path / "repo"
    report = IntakeReport(source="/data/faces", layout="folder")
    built = []
    for split, n in counts.items():
        samples = [
            make_sample(tmp_path / "src", f"{split}{i}", split=split, mask=i == 0, target=split == "train")
            for i in range(n)
        ]
        report.splits[split] = SplitManifest(split=split, samples=samples)
        built += [write_shard(p, out) for p in plan_shards(split, samples, "10MB")]
    info = DatasetCardInfo(
        splits=tuple(summarize_split(s, report.splits[s].samples, built) for s in counts),
        repo_id="alice/face-seg",
        tags=("faces",),
    )
    return report, built, info


def test_card_front_matter_is_what_datasets_and_the_hub_read(tmp_path):
    from datasets import DatasetInfo

    _, built, info = build(tmp_path)
    card = render_dataset_card(None, info)
    meta, body = split_front_matter(card)
    assert meta["license"] == "other"
    assert meta["task_categories"] == ["image-to-image"]
    assert meta["tags"] == ["hubpress", "image-editing", "faces"]
    assert meta["pretty_name"] == "Face Seg"
    assert meta["configs"] == [
        {
            "config_name": "default",
            # Explicit shard lists in id order (names are hashes; a glob would read them in hash order).
            "data_files": [
                {"split": "train", "path": [b.path_in_repo for b in built if b.split == "train"]},
                {"split": "test", "path": [b.path_in_repo for b in built if b.split == "test"]},
            ],
        }
    ]
    parsed = DatasetInfo._from_yaml_dict(meta["dataset_info"])
    assert parsed.features == editing_features()
    assert parsed.splits["train"].num_examples == 3 and parsed.splits["test"].num_examples == 2
    assert parsed.download_size == sum(b.size for b in built)
    assert BEGIN in body and END in body
    assert 'load_editing_dataset("alice/face-seg")' in body and 'load_dataset("alice/face-seg")' in body
    assert "| train | 3 | 1 | 3 | 1 | 1 |" in body  # examples, with mask, with target, controls, files
    assert "| test | test0 | edit test0 |" in body


def test_load_dataset_on_the_published_directory_follows_the_card(tmp_path):
    from datasets import load_dataset

    _, _, info = build(tmp_path)
    (tmp_path / "repo" / "README.md").write_text(render_dataset_card(None, info))
    dsd = load_dataset(str(tmp_path / "repo"), cache_dir=str(tmp_path / "cache"))
    assert {k: v.num_rows for k, v in dsd.items()} == {"train": 3, "test": 2}
    assert dsd["train"].features == editing_features()
    assert dsd["test"][0]["target_image"] is None


def test_republish_keeps_user_edits_and_refreshes_hubpress_parts(tmp_path):
    _, _, info = build(tmp_path)
    first = render_dataset_card(None, info)
    meta, body = split_front_matter(first)
    meta["language"] = ["en"]  # a key the user added
    meta["license"] = "cc-by-4.0"  # the user chose a license on the Hub
    edited_body = body.replace(END, END + "\n\n## Citation\n\nPlease cite our paper.")
    edited_body = "Intro the user wrote.\n\n" + edited_body
    edited = "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n" + edited_body

    _, _, bigger = build(tmp_path / "v2", counts={"train": 4, "test": 2})
    second = render_dataset_card(edited, bigger)
    meta2, body2 = split_front_matter(second)
    assert meta2["language"] == ["en"]
    assert meta2["license"] == "cc-by-4.0"  # no --license given: the card's is kept
    assert meta2["dataset_info"]["splits"][0]["num_examples"] == 4
    assert body2.lstrip().startswith("Intro the user wrote.")
    assert "## Citation\n\nPlease cite our paper." in body2
    assert "| train | 4 |" in body2 and "| train | 3 |" not in body2

    forced = DatasetCardInfo(splits=bigger.splits, repo_id=bigger.repo_id, license="mit")
    assert split_front_matter(render_dataset_card(edited, forced))[0]["license"] == "mit"


def test_unchanged_dataset_renders_identical_card(tmp_path):
    _, _, info = build(tmp_path)
    card = render_dataset_card(None, info)
    assert render_dataset_card(None, info) == card
    assert render_dataset_card(card, info) == card


def test_prompts_cannot_break_the_examples_table(tmp_path):
    sample = make_sample(tmp_path, "p", prompt="make it | pop\nand shine " + "x" * 300)
    info = DatasetCardInfo(splits=(summarize_split("train", [sample], []),))
    body = split_front_matter(render_dataset_card(None, info))[1]
    row = next(line for line in body.splitlines() if line.startswith("| train | p |"))
    assert "make it \\| pop and shine" in row and row.endswith("… |")
    assert 'load_dataset("path/to/this/dataset")' in body


def test_manifest_is_complete_stable_and_secret_free(tmp_path):
    report, built, _ = build(tmp_path)
    report.source = "s3://user:hunter2@bucket/faces"
    report.splits["train"].skipped.append(SkippedSample("bad", ["missing_prompt"]))
    report.corrections.append(Correction("train", "train1", "train1.png", "png", "jpeg"))
    options = {
        "max_shard_size": 500_000_000,
        "token": SecretStr("hf_secret_value"),
        "hf_token": "hf_plain_secret",
        "tags": ["faces"],
        # Not hex: "abc" turned up by chance inside a shard's sha256 once the shard bytes changed.
        "s3": {"aws_secret_access_key": "wJalrXUtnFEMI-secret", "endpoint": "http://127.0.0.1:9000"},
    }
    manifest = build_manifest(report, built, options, fingerprint="f" * 32, flow_run_id="run-1")
    text = json_bytes(manifest).decode()
    for secret in ("hunter2", "hf_secret_value", "hf_plain_secret", "wJalrXUtnFEMI-secret"):
        assert secret not in text
    assert manifest["source"] == "s3://bucket/faces"
    assert manifest["options"] == {
        "max_shard_size": 500_000_000,
        "s3": {"endpoint": "http://127.0.0.1:9000"},
        "tags": ["faces"],
    }
    assert set(manifest["files"]) == {b.path_in_repo for b in built}
    for b in built:
        assert manifest["files"][b.path_in_repo] == {
            "sha256": b.sha256,
            "size": b.size,
            "split": b.split,
            "num_rows": b.num_rows,
        }
    assert (
        manifest["splits"]["train"]["num_examples"] == 3 and manifest["splits"]["train"]["num_skipped"] == 1
    )
    assert manifest["skipped"] == [{"split": "train", "id": "bad", "reasons": ["missing_prompt"]}]
    assert manifest["corrections"][0]["to"] == "jpeg"
    assert manifest["flow_run_id"] == "run-1" and manifest["fingerprint"] == "f" * 32
    assert "hubpress_version" in manifest
    # Same input, same bytes (key order included), whatever order the shards come in.
    again = build_manifest(
        report,
        list(reversed(built)),
        dict(reversed(options.items())),
        fingerprint="f" * 32,
        flow_run_id="run-1",
    )
    assert json_bytes(again) == json_bytes(manifest)
    assert list(json.loads(text)) == list(manifest)
