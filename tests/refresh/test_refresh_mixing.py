"""Mixing publishes every kept row by default; opt-in rules count what they leave out or repeat.
An empty split is never committed (refresh and publish-dataset)."""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter

import pytest
from PIL import Image as PILImage

from hubpress.refresh.mix import mix_counts, mix_plan
from tests.conftest import WRITE_TOKEN, run_cli


def test_all_rows_places_every_row_once_in_a_seeded_weighted_order():
    sizes = {"a": 15, "b": 5, "zero": 3}
    probabilities = {"a": 0.7, "b": 0.3, "zero": 0.0}
    plan = mix_plan(sizes, probabilities, seed=1)
    assert plan == mix_plan(sizes, probabilities, seed=1) and plan != mix_plan(sizes, probabilities, seed=2)
    assert Counter(b for b, _ in plan) == Counter(sizes)
    for backend, size in sizes.items():  # each backend's rows in their own order, none twice
        assert [i for b, i in plan if b == backend] == list(range(size))
    assert {b for b, _ in plan[-3:]} == {"zero"}  # weight 0: after the weighted backends, not dropped
    assert all(
        c == {"published": sizes[b], "left_out": 0, "repeated": 0} for b, c in mix_counts(plan, sizes).items()
    )


def test_opt_in_rules_are_counted():
    sizes = {"a": 15, "b": 5}
    first = mix_plan(sizes, {"a": 0.7, "b": 0.3}, seed=0, stopping="first_exhausted")
    counts = mix_counts(first, sizes)
    assert sum(c["published"] for c in counts.values()) == len(first) < 20
    assert all(c["published"] + c["left_out"] == sizes[b] and c["repeated"] == 0 for b, c in counts.items())
    every = mix_plan(sizes, {"a": 0.7, "b": 0.3}, seed=0, stopping="all_exhausted")
    counts = mix_counts(every, sizes)
    assert all(c["left_out"] == 0 for c in counts.values())
    assert sum(c["repeated"] for c in counts.values()) == len(every) - 20 > 0


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), (width, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def push_captioned(count: int, usable: int) -> str:
    """`count` rows of which the first `usable` have a caption."""
    from datasets import Dataset, Features, Image, Value

    name = f"alice/mix-{uuid.uuid4().hex[:8]}"
    features = Features({"image": Image(), "caption": Value("string")})
    Dataset.from_dict(
        {
            "image": [{"bytes": png(4 + i, 4), "path": None} for i in range(count)],
            "caption": [f"row {i}" if i < usable else None for i in range(count)],
        },
        features=features,
    ).push_to_hub(name, token=WRITE_TOKEN)
    return name


@pytest.mark.usefixtures("prefect_harness")
def test_mixed_refresh_publishes_every_kept_row_and_counts_agree(hub, write_token, tmp_path):
    a, b = push_captioned(17, 15), push_captioned(6, 5)
    config = tmp_path / "multidatabackend.json"
    common = {"type": "huggingface", "caption_column": "caption", "cache_dir": str(tmp_path / "cache")}
    config.write_text(
        json.dumps(
            [
                {"id": "a", "dataset_name": a, "probability": 0.7, **common},
                {"id": "b", "dataset_name": b, "probability": 0.3, **common},
            ]
        )
    )
    repo = f"alice/mixed-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("refresh", str(config), repo, "--seed", "3", "--json")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    kept = {"a": 15, "b": 5}
    assert data["samples"] == {"train": sum(kept.values())} and data["skipped"] == {"train": 3}
    assert {k: (v["kept"], v["published"], v["left_out_by_mixing"]) for k, v in data["backends"].items()} == {
        "a": (15, 15, 0),
        "b": (5, 5, 0),
    }
    manifest = json.loads(hub.read_file("dataset", repo, "manifest.json", data["commit"]))
    assert (
        sum(c["kept"] for c in manifest["counts"].values())
        == manifest["splits"]["train"]["num_examples"]
        == 20
    )
    assert manifest["mixing"]["stopping"] == "all_rows"
    from datasets import load_dataset

    ds = load_dataset(repo, split="train", revision=data["commit"], token=WRITE_TOKEN)
    assert Counter(ds["backend_id"]) == Counter(kept)
    assert sorted(zip(ds["backend_id"], ds["source_index"], strict=True)) == sorted(
        [("a", i) for i in range(15)] + [("b", i) for i in range(5)]
    )

    # The opt-in rule leaves rows out, and says how many, in --json and the manifest.
    code, out, err = run_cli(
        "refresh", str(config), repo, "--seed", "3", "--stopping", "first_exhausted", "--json"
    )
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    left_out = {k: v["left_out_by_mixing"] for k, v in data["backends"].items()}
    published = data["samples"]["train"]
    assert sum(left_out.values()) > 0 and published + sum(left_out.values()) == 20
    assert data["skipped"] == {"train": 3 + sum(left_out.values())}
    manifest = json.loads(hub.read_file("dataset", repo, "manifest.json", data["commit"]))
    assert {k: c["left_out_by_mixing"] for k, c in manifest["counts"].items()} == left_out
    assert sum(c["published"] for c in manifest["counts"].values()) == published
    assert manifest["splits"]["train"]["num_examples"] == published


@pytest.mark.usefixtures("prefect_harness")
def test_refresh_that_keeps_nothing_is_refused_without_a_commit(hub, write_token, tmp_path):
    upstream = push_captioned(4, 0)  # no row has a caption
    config = tmp_path / "multidatabackend.json"
    config.write_text(
        json.dumps(
            {"id": "up", "type": "huggingface", "dataset_name": upstream, "cache_dir": str(tmp_path / "c")}
        )
    )
    repo = f"alice/empty-{uuid.uuid4().hex[:8]}"
    hub.reset_stats()
    code, out, err = run_cli("refresh", str(config), repo, "--json")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1, err
    assert "empty split (train: 0 kept, 4 left out)" in lines[0] and "no_caption 4" in lines[0]
    assert "nothing was committed" in lines[0] and "Traceback" not in err
    assert hub.stats.commits == 0 and hub.head("dataset", repo) is None


@pytest.mark.usefixtures("prefect_harness")
def test_publish_dataset_with_every_sample_skipped_is_refused(hub, write_token, tmp_path):
    from hubpress.testdata.synth import write_dataset

    source = tmp_path / "src"
    write_dataset(source, samples=2, defects=("truncated",))
    # every sample's target is broken: nothing would be kept
    for target in (source / "train" / "training_images").glob("*.png"):
        target.write_bytes(b"not an image")
    repo = f"alice/all-skipped-{uuid.uuid4().hex[:8]}"
    hub.reset_stats()
    code, out, err = run_cli("publish-dataset", str(source), repo, "--json")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1, err
    assert "empty split (train: 0 kept, 2 left out)" in lines[0] and "nothing was committed" in lines[0]
    assert "Traceback" not in err
    assert hub.stats.commits == 0 and hub.head("dataset", repo) is None
