"""Each LoRA family is published as its loader expects, with a card that claims only what loads it.

tests/lora_loader_reference.py encodes PEFT's file lookup and diffusers' Qwen-Image key handling;
every family is published through the CLI to the Hub-protocol test server and read back with it.
"""

from __future__ import annotations

import json
import uuid

import pytest
from huggingface_hub import HfApi
from safetensors import safe_open

from hubpress.shards.cards import split_front_matter
from hubpress.testdata.synth_lora import write_lora
from tests import lora_loader_reference as ref
from tests.conftest import WRITE_TOKEN, run_cli

# (naming, file name, with PEFT's adapter_config.json, library_name the card claims)
FAMILIES = [
    ("peft", "pytorch_lora_weights.safetensors", False, "diffusers"),
    ("diffusers", "pytorch_lora_weights.safetensors", False, "diffusers"),
    ("kohya", "pytorch_lora_weights.safetensors", False, "diffusers"),
    ("peft_adapter", "adapter_model.safetensors", True, "peft"),
    ("peft_adapter", "pytorch_lora_weights.safetensors", False, None),
    ("lokr", "pytorch_lora_weights.safetensors", False, None),
    ("loha", "pytorch_lora_weights.safetensors", False, None),
]


def published(hub, repo: str, commit: str) -> tuple[dict, str, list[str]]:
    meta, body = split_front_matter(hub.read_file("model", repo, "README.md", commit).decode())
    files = HfApi(token=WRITE_TOKEN).list_repo_files(repo, revision=commit)
    return meta, body, files


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("naming", "file_name", "with_config", "library"), FAMILIES)
def test_each_family_gets_the_card_its_loader_expects(
    hub, write_token, tmp_path, naming, file_name, with_config, library
):
    weights = write_lora(tmp_path / file_name, naming=naming, rank=4, modules=6, hidden=16, alpha=4.0)
    if with_config:
        (tmp_path / "adapter_config.json").write_text(
            json.dumps({"r": 4, "lora_alpha": 4, "peft_type": "LORA", "target_modules": ["to_q"]})
        )
    repo = f"alice/loader-{naming}-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli(
        "publish-lora", str(weights), repo, "--base-model", "Qwen/Qwen-Image-Edit", "--json"
    )
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    meta, body, files = published(hub, repo, data["commit"])
    assert meta.get("library_name") == library
    weight_file = next(f for f in files if f.endswith(".safetensors"))
    with safe_open(str(weights), "np") as fh:
        keys = list(fh.keys())
    if library == "peft":
        # PeftModel.from_pretrained / load_peft_weights find the weights under PEFT's names
        assert ref.peft_weights_file(files) == weight_file == "adapter_model.safetensors"
        assert "PeftModel.from_pretrained(base" in body and "load_lora_weights" not in body
        assert "peft" in meta["tags"] and "diffusers" not in meta["tags"]
    elif library == "diffusers":
        assert len(ref.diffusers_qwen_modules(keys)) == 6  # every adapted module loads
        assert f'pipe.load_lora_weights("{repo}", weight_name="{weight_file}")' in body
    else:
        # diffusers would refuse these names, or load none of them: the card says so and claims nothing
        try:
            loaded = ref.diffusers_qwen_modules(keys)
        except ref.CannotLoad:
            loaded = set()
        assert loaded == set()
        assert "load_lora_weights(" not in body and "diffusers" not in meta["tags"]
        if naming in ("lokr", "loha"):
            assert "create_lycoris_from_weights(1.0, path, pipe.transformer)" in body
            assert f'hf_hub_download("{repo}", "{weight_file}")' in body
        else:
            assert "adapter_config.json" in body
            with pytest.raises(ref.CannotLoad, match="adapter_config"):
                ref.peft_weights_file(files)


def test_peft_lookup_cases():
    assert (
        ref.peft_weights_file({"adapter_config.json", "adapter_model.safetensors"})
        == "adapter_model.safetensors"
    )
    assert ref.peft_weights_file({"adapter_config.json", "adapter_model.bin"}) == "adapter_model.bin"
    with pytest.raises(ref.CannotLoad, match="Can't find weights"):
        ref.peft_weights_file({"adapter_config.json", "pytorch_lora_weights.safetensors"})


@pytest.mark.usefixtures("prefect_harness")
def test_a_released_peft_checkpoint_keeps_peft_names(hub, write_token, tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoint-200"
    write_lora(ckpt / "adapter_model.safetensors", naming="peft_adapter", rank=4)
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "peft_type": "LORA"}))
    repo = f"alice/peft-release-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("release", str(run), "--repo", repo, "--json")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    meta, body, files = published(hub, repo, data["commit"])
    assert ref.peft_weights_file(files) == "adapter_model.safetensors"
    assert "pytorch_lora_weights.safetensors" not in files
    assert json.loads(hub.read_file("model", repo, "adapter_config.json", data["commit"]))["lora_alpha"] == 8
    assert meta["library_name"] == "peft"
