"""Training from the published simpletuner_dataloader.json behaves as training from the user's config.

SimpleTuner's frame limits, probability and collection rules are encoded in
tests/simpletuner_reference.py; these tests read the published entry and rows with them, through
the CLI against the Hub-protocol test server.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter

import pytest
from PIL import Image as PILImage

from hubpress.refresh.config import parse_refresh_config
from hubpress.refresh.lineage import RefreshOptions, config_fingerprint
from hubpress.refresh.simpletuner import dataloader_entry
from hubpress.refresh.training_keys import training_keys
from tests import simpletuner_reference as st
from tests.conftest import WRITE_TOKEN, run_cli

# (case, the user's entry, what the published entry keeps of it)
TRAINING_KEY_CASES = [
    (
        "top-level training keys stay at the top level",
        {
            "repeats": 3,
            "crop": True,
            "crop_aspect": "square",
            "resolution": 1024,
            "resolution_type": "pixel_area",
        },
        {
            "repeats": 3,
            "crop": True,
            "crop_aspect": "square",
            "resolution": 1024,
            "resolution_type": "pixel_area",
        },
    ),
    (
        "the video block, whole",
        {"video": {"num_frames": 16, "min_frames": 16, "max_frames": 300, "is_i2v": True}},
        {"video": {"num_frames": 16, "min_frames": 16, "max_frames": 300, "is_i2v": True}},
    ),
    (
        "filters that are training settings stay",
        {"minimum_image_size": 512, "maximum_aspect_ratio": 2.0, "caption_shuffle": {"count": 2}},
        {"minimum_image_size": 512, "maximum_aspect_ratio": 2.0, "caption_shuffle": {"count": 2}},
    ),
    (
        "what the refresh applied is not redone on the published columns",
        {
            "caption_column": "title",
            "huggingface": {
                "filter_func": {"quality_thresholds": {"a": 1}},
                "width_column": "w",
                "num_proc": 4,
            },
            "composite_image_config": {"enabled": True, "image_count": 2},
        },
        {"huggingface": {"num_proc": 4}},
    ),
    (
        "upstream identity and caches keyed by upstream names are replaced",
        {
            "dataset_name": "x/y",
            "revision": "main",
            "split": "test",
            "cache_dir_vae": "/vae",
            "image_column": "jpg",
        },
        {},
    ),
    (
        "references to unpublished backends and secrets are dropped",
        {
            "conditioning_data": "canny",
            "text_embeds": "te",
            "huggingface": {"hf_token": "hf_x", "streaming": True},
        },
        {"text_embeds": "te", "huggingface": {"streaming": True}},
    ),
]


@pytest.mark.parametrize(("case", "user", "kept"), TRAINING_KEY_CASES, ids=[c[0] for c in TRAINING_KEY_CASES])
def test_training_keys_table(case, user, kept):
    raw = {"id": "u", "type": "huggingface", "dataset_name": "x/y", **user}
    assert training_keys(raw) == kept
    entry = dataloader_entry(parse_refresh_config(raw), "org/out")[0]
    for key, value in kept.items():
        if key != "huggingface":
            assert entry[key] == value, case
    assert "hf_x" not in json.dumps(entry)


def test_an_instance_prompt_strategy_is_kept():
    raw = {"id": "u", "type": "huggingface", "dataset_name": "x/y", "caption_column": "t"}
    instance = {**raw, "caption_strategy": "instanceprompt", "instance_prompt": "a photo of sks dog"}
    entry = dataloader_entry(parse_refresh_config(instance), "org/out")[0]
    assert (entry["caption_strategy"], entry["instance_prompt"]) == ("instanceprompt", "a photo of sks dog")
    assert dataloader_entry(parse_refresh_config(raw), "org/out")[0]["caption_strategy"] == "huggingface"


FRAME_CASES = [
    ("no video block: five seconds at 30 fps", {}, (150, 150, None)),
    ("num_frames only: min_frames follows", {"video": {"num_frames": 16}}, (16, 16, None)),
    ("all three", {"video": {"num_frames": 16, "min_frames": 24, "max_frames": 90}}, (16, 24, 90)),
]


@pytest.mark.parametrize(("case", "entry", "limits"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_frame_limit_cases(case, entry, limits):
    assert st.frame_limits(entry) == limits


def test_frame_limits_refuse_min_below_num():
    with pytest.raises(ValueError, match="min_frames"):
        st.frame_limits({"video": {"num_frames": 16, "min_frames": 8}})


PROBABILITY_CASES = [
    ("absent is 1", [{"id": "a"}, {"id": "b", "probability": 3}], {"a": 0.25, "b": 0.75}),
    (
        "null and empty are 1",
        [{"id": "a", "probability": None}, {"id": "b", "probability": ""}],
        {"a": 0.5, "b": 0.5},
    ),
    ("zero is never drawn", [{"id": "a", "probability": 0}, {"id": "b", "probability": 0.2}], {"b": 1.0}),
]


@pytest.mark.parametrize(
    ("case", "entries", "weights"), PROBABILITY_CASES, ids=[c[0] for c in PROBABILITY_CASES]
)
def test_probability_cases(case, entries, weights):
    assert st.draw_weights(entries) == pytest.approx(weights)


COLLECTION_CASES = [
    ("a list", {"collection": "a"}, {"collection": ["a", "b"]}, True),
    ("a single string", {"collection": "a"}, {"collection": "a"}, True),
    ("another collection", {"collection": "c"}, {"collection": ["a"]}, False),
    ("no collection column", {}, {"collection": ["a"]}, False),
    ("no filter", {}, None, True),
]


@pytest.mark.parametrize(
    ("case", "item", "config", "passes"), COLLECTION_CASES, ids=[c[0] for c in COLLECTION_CASES]
)
def test_collection_cases(case, item, config, passes):
    assert st.passes_filter_func(item, config) is passes


def test_a_changed_training_key_changes_what_is_published():
    """The entry is published: a new `repeats` must not be taken for "nothing changed"."""
    base = {"id": "u", "type": "huggingface", "dataset_name": "x/y"}
    options = RefreshOptions(target="org/out")
    one = config_fingerprint(parse_refresh_config({**base, "repeats": 1}), options)
    two = config_fingerprint(parse_refresh_config({**base, "repeats": 2}), options)
    assert one != two


def push(rows: dict, features) -> str:
    from datasets import Dataset

    name = f"alice/st-train-{uuid.uuid4().hex[:8]}"
    Dataset.from_dict(rows, features=features).push_to_hub(name, token=WRITE_TOKEN)
    return name


def published(hub, repo: str, commit: str):
    from datasets import load_dataset

    entries = json.loads(hub.read_file("dataset", repo, "simpletuner_dataloader.json", commit))
    return entries, load_dataset(repo, split="train", revision=commit, token=WRITE_TOKEN)


@pytest.mark.usefixtures("prefect_harness")
def test_video_clips_train_from_the_published_entry_as_from_the_users_config(hub, write_token, tmp_path):
    from datasets import Features, Value, Video

    frames = [16, 24, 32, 40, 48, 60, 90, 200]
    upstream = push(
        {
            "video": [{"bytes": f"fake-mp4-{i}".encode(), "path": f"{i}.mp4"} for i in range(len(frames))],
            "text": [f"clip {i}" for i in range(len(frames))],
            "frames": frames,
        },
        Features({"video": Video(), "text": Value("string"), "frames": Value("int32")}),
    )
    user = {
        "id": "clips",
        "type": "huggingface",
        "dataset_type": "video",
        "dataset_name": upstream,
        "cache_dir": str(tmp_path / "cache"),
        "repeats": 2,
        "video": {"num_frames": 16, "min_frames": 16, "is_i2v": False},
        "huggingface": {"caption_column": "text", "num_frames_column": "frames"},
    }
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps(user))
    repo = f"alice/st-video-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("refresh", str(config), repo, "--json")
    assert code == 0, err
    commit = json.loads(out.strip().splitlines()[-1])["commit"]
    entries, ds = published(hub, repo, commit)
    (entry,) = entries
    assert entry["video"] == user["video"] and entry["repeats"] == 2
    limits = st.frame_limits(entry)
    users_limits = st.frame_limits(user)
    assert limits == users_limits == (16, 16, None)
    upstream_kept = [n for n in frames if st.keeps_clip(n, users_limits)]
    column = entry["huggingface"]["num_frames_column"]
    published_kept = [row[column] for row in ds if st.keeps_clip(row[column], limits)]
    assert published_kept == upstream_kept == frames
    # Without the video block, SimpleTuner's defaults would have dropped all but one clip.
    assert [n for n in frames if st.keeps_clip(n, st.frame_limits({}))] == [200]


def png(width: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, 4), (width, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.usefixtures("prefect_harness")
def test_a_mix_trains_at_the_configured_weights(hub, write_token, tmp_path):
    """0.5/0.3/0.2 over 20/10/5 rows: one entry per backend on the same repo and split, each with
    its probability and its rows (collection), so each backend is drawn at its configured weight,
    not at its share of the rows (57/29/14%)."""
    from datasets import Features, Image, Value

    features = Features({"image": Image(), "caption": Value("string")})
    sizes = {"a": 20, "b": 10, "c": 5}
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    backends = []
    for backend_id, count in sizes.items():
        name = push(
            {
                "image": [{"bytes": png(4 + i), "path": None} for i in range(count)],
                "caption": [f"{backend_id} {i}" for i in range(count)],
            },
            features,
        )
        backends.append(
            {
                "id": backend_id,
                "type": "huggingface",
                "dataset_name": name,
                "probability": weights[backend_id],
                "repeats": 1,
                "caption_column": "caption",
                "cache_dir": str(tmp_path / "cache"),
            }
        )
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps(backends))
    repo = f"alice/st-mix-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("refresh", str(config), repo, "--seed", "5", "--json")
    assert code == 0, err
    commit = json.loads(out.strip().splitlines()[-1])["commit"]
    entries, ds = published(hub, repo, commit)
    assert [e["id"] for e in entries] == ["a", "b", "c"]
    assert {e["dataset_name"] for e in entries} == {repo} and {e["split"] for e in entries} == {"train"}
    assert all(e["repeats"] == 1 for e in entries)
    rows = list(ds)
    # The rows each entry trains on: SimpleTuner's metadata backend applies the quality threshold
    # (the rule its code runs today); its builder's filter_func rule (collection) agrees.
    trained = {e["id"]: [r for r in rows if st.passes_quality(r, e["huggingface"])] for e in entries}
    assert {k: len(v) for k, v in trained.items()} == sizes
    for e in entries:
        assert trained[e["id"]] == [
            r for r in rows if st.passes_filter_func(r, e["huggingface"]["filter_func"])
        ]
    assert all(r["caption"].startswith(k) for k, v in trained.items() for r in v)
    assert st.draw_weights(entries) == pytest.approx(weights)
    # What one entry without probabilities would have trained on: each backend at its row share.
    shares = Counter(r["collection"] for r in rows)
    assert {k: round(v / len(rows), 2) for k, v in shares.items()} == {"a": 0.57, "b": 0.29, "c": 0.14}
