"""The LoRA model card: Hub metadata, usage, LoRA facts and a config summary, regenerated without
losing what a user wrote."""

from __future__ import annotations

import pytest

from hubpress.lora.model_card import base_model_from_config, render_model_card, summarize_training_config
from hubpress.lora.weights import inspect_safetensors
from hubpress.shards.cards import BEGIN, END, split_front_matter
from hubpress.testdata.synth_lora import write_lora

CONFIG = {
    "model": {
        "pretrained_model_name_or_path": "Qwen/Qwen-Image-Edit",
        "lora": {"r": 16, "lora_alpha": 32, "target_modules": ["to_q", "to_k"]},
    },
    "train": {
        "learning_rate": 1e-4,
        "max_train_steps": 3000,
        "train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "mixed_precision": "bf16",
        "optimizer": {"type": "AdamW", "lr": 5e-4},
    },
    "data": {"resolution": 512},
    "seed": 42,
    "validation": {"steps": 100},
}


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    path = write_lora(tmp_path_factory.mktemp("lora") / "w.safetensors", rank=8, modules=12, hidden=16)
    return inspect_safetensors(path)


def test_front_matter_and_usage(info):
    card = render_model_card(
        None,
        info,
        repo_id="alice/face-seg",
        base_model="Qwen/Qwen-Image-Edit",
        license="apache-2.0",
        training_config=None,
        sample_images=["samples/a.png", "samples/b.png"],
        sample_prompts={"samples/a.png": "segment the face"},
        extra_tags=("qwen",),
    )
    meta, body = split_front_matter(card)
    assert meta["base_model"] == "Qwen/Qwen-Image-Edit"
    assert meta["library_name"] == "diffusers"
    assert meta["pipeline_tag"] == "image-to-image"
    assert meta["license"] == "apache-2.0"
    assert {"lora", "hubpress", "image-editing", "qwen"} <= set(meta["tags"])
    assert meta["widget"] == [
        {"text": "segment the face", "output": {"url": "samples/a.png"}},
        {"text": "", "output": {"url": "samples/b.png"}},
    ]
    assert 'pipe.load_lora_weights("alice/face-seg", weight_name="pytorch_lora_weights.safetensors")' in body
    assert 'download_lora(repo_id="alice/face-seg"' in body and "trainer.load_lora(lora_path)" in body
    assert "| Rank | 8 |" in body
    assert "`to_q`" in body and "`to_out.0`" in body
    assert "| Tensor dtypes | F16 |" in body
    assert f"| Parameters | {info.parameter_count:,} |" in body


def test_optional_keys_are_left_out(info):
    meta, body = split_front_matter(render_model_card(None, info, repo_id="alice/x", training_config=None))
    assert "base_model" not in meta and "license" not in meta and "widget" not in meta
    assert "## Training configuration" not in body


def test_training_config_summary(info):
    rows = dict(summarize_training_config(CONFIG))
    assert rows == {
        "Base model": "Qwen/Qwen-Image-Edit",
        "Learning rate": "0.0001",
        "Training steps": "3000",
        "Batch size": "2",
        "Gradient accumulation": "4",
        "LoRA rank": "16",
        "LoRA alpha": "32",
        "Target modules": "to_q, to_k",
        "Resolution": "512",
        "Optimizer": "AdamW",
        "Mixed precision": "bf16",
        "Seed": "42",
    }
    card = render_model_card(None, info, repo_id="alice/x", training_config=CONFIG)
    meta, body = split_front_matter(card)
    assert meta["base_model"] == "Qwen/Qwen-Image-Edit"  # taken from the config
    assert "| Learning rate | 0.0001 |" in body


def test_local_paths_are_not_taken_as_base_models():
    assert base_model_from_config({"pretrained_model_name_or_path": "/models/qwen"}) is None
    assert base_model_from_config({"pretrained_model_name_or_path": "./qwen/edit"}) is None
    assert base_model_from_config({"base_model": "Qwen/Qwen-Image-Edit-2509"}) == "Qwen/Qwen-Image-Edit-2509"


def test_user_edits_outside_markers_and_user_yaml_survive(info):
    first = render_model_card(None, info, repo_id="alice/x", training_config=CONFIG, license="mit")
    meta, body = split_front_matter(first)
    meta_text = first.split("---\n")[1]
    edited = (
        "---\n"
        + meta_text.replace("- lora\n", "- lora\n- my-own-tag\n")
        + "datasets:\n- alice/faces\n---\n\n"
        + "Intro written by Alice.\n\n"
        + body.replace("# x", "# x")
        + "\n## Limitations\n\nOnly frontal faces.\n"
    )
    edited = edited.replace("| Rank | 8 |", "| Rank | 999 |")  # an edit inside the markers is replaced
    again = render_model_card(edited, info, repo_id="alice/x", training_config=CONFIG)
    meta2, body2 = split_front_matter(again)
    assert "Intro written by Alice." in body2 and "Only frontal faces." in body2
    assert body2.index("Intro written by Alice.") < body2.index(BEGIN) < body2.index(END)
    assert body2.index(END) < body2.index("Only frontal faces.")
    assert "my-own-tag" in meta2["tags"] and "lora" in meta2["tags"]
    assert meta2["datasets"] == ["alice/faces"]
    assert meta2["license"] == "mit"  # not passed this time: the existing value is kept
    assert "| Rank | 8 |" in body2 and "999" not in body2


def test_rendering_is_deterministic_and_idempotent(info):
    kwargs = dict(repo_id="alice/x", training_config=CONFIG, sample_images=["samples/a.png"])
    first = render_model_card(None, info, **kwargs)
    assert render_model_card(None, info, **kwargs) == first
    assert render_model_card(first, info, **kwargs) == first
