"""publish-lora accepts the LoRA family people publish (PEFT/diffusers, kohya, LyCORIS LoKr and
LoHa) and says which one, with its rank, in --json and the card; checkpoints and pickles stay out."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from hubpress.lora.weights import (
    InvalidWeightsError,
    NotALoraError,
    PickleWeightsError,
    apply_adapter_config,
    inspect_safetensors,
)
from hubpress.testdata.synth_lora import write_broken, write_lora
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("naming", "family", "tensors_per_module"),
    [
        ("peft", "peft", 2),
        ("diffusers", "diffusers", 2),
        ("kohya", "kohya", 3),
        ("lokr", "lycoris-lokr", 4),
        ("loha", "lycoris-loha", 5),
    ],
)
def test_each_family_is_recognised_with_its_rank_and_alpha(tmp_path, naming, family, tensors_per_module):
    path = write_lora(
        tmp_path / f"{naming}.safetensors", naming=naming, rank=6, modules=5, hidden=24, alpha=3.0
    )
    info = inspect_safetensors(path)
    assert (info.family, info.rank, info.ranks, info.lora_layers) == (family, 6, (6,), 5)
    assert info.tensor_count == 5 * tensors_per_module
    if naming in ("kohya", "lokr", "loha"):  # their alphas are tensors in the file
        assert info.alphas == (3.0,)


def save(path, tensors: dict[str, tuple[int, ...]]):
    from safetensors.numpy import save_file

    save_file({k: np.ones(shape, dtype=np.float16) for k, shape in tensors.items()}, str(path))
    return path


def test_whole_lokr_factors_and_incomplete_lycoris_modules(tmp_path):
    m = "lycoris_transformer_blocks_0_attn_to_q"
    whole = save(
        tmp_path / "whole.safetensors", {f"{m}.lokr_w1": (4, 4), f"{m}.lokr_w2": (8, 8), f"{m}.alpha": ()}
    )
    info = inspect_safetensors(whole)
    assert info.family == "lycoris-lokr" and info.rank == 0  # no low-rank factor
    half = save(tmp_path / "half.safetensors", {f"{m}.lokr_w1": (4, 4), f"{m}.lokr_w2_a": (8, 2)})
    with pytest.raises(InvalidWeightsError, match="only one of lokr_w2_a / lokr_w2_b"):
        inspect_safetensors(half)
    loha = save(
        tmp_path / "loha.safetensors",
        {
            f"{m}.hada_w1_a": (8, 2),
            f"{m}.hada_w1_b": (2, 8),
            f"{m}.hada_w2_a": (8, 3),
            f"{m}.hada_w2_b": (3, 8),
        },
    )
    with pytest.raises(InvalidWeightsError, match="rank 2 in hada_w1 but 3 in hada_w2"):
        inspect_safetensors(loha)


def test_checkpoints_and_pickles_stay_refused(tmp_path):
    checkpoint = save(tmp_path / "model.safetensors", {"transformer_blocks.0.attn.to_q.weight": (8, 8)})
    with pytest.raises(NotALoraError, match="not a LoRA"):
        inspect_safetensors(checkpoint)
    with pytest.raises(PickleWeightsError):
        inspect_safetensors(write_broken(tmp_path / "w.safetensors", "pickle"))


def test_adapter_config_is_checked_and_gives_alpha(tmp_path):
    info = inspect_safetensors(write_lora(tmp_path / "w.safetensors", naming="peft", rank=8))
    good = tmp_path / "adapter_config.json"
    good.write_text(json.dumps({"r": 8, "lora_alpha": 16, "target_modules": ["to_q"]}))
    assert apply_adapter_config(info, good).alphas == (16.0,)
    good.write_text(json.dumps({"r": 4, "lora_alpha": 16}))
    with pytest.raises(InvalidWeightsError, match="r=4 but w.safetensors has rank 8"):
        apply_adapter_config(info, good)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("naming", "family"), [("lokr", "lycoris-lokr"), ("kohya", "kohya")])
def test_publish_lora_names_the_family_in_json_and_card(hub, write_token, tmp_path, naming, family):
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", naming=naming, rank=8, alpha=4.0)
    repo = f"alice/{naming}-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-lora", str(weights), repo, "--json")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["lora_family"] == family and data["commit"]
    assert (data["lora"]["lora_family"], data["lora"]["rank"], data["lora"]["alphas"]) == (family, 8, [4.0])
    card = hub.read_file("model", repo, "README.md", data["commit"]).decode()
    assert f"LoRA family `{family}`" in card and "| LoRA family | " + family in card
    assert "rank 8" in card
    assert (
        hub.read_file("model", repo, "pytorch_lora_weights.safetensors", data["commit"])
        == weights.read_bytes()
    )


@pytest.mark.usefixtures("prefect_harness")
def test_peft_adapter_config_beside_the_weights_is_published(hub, write_token, tmp_path):
    weights = write_lora(tmp_path / "adapter_model.safetensors", naming="peft", rank=4)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "peft_type": "LORA"}))
    repo = f"alice/peft-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-lora", str(weights), repo, "--json")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["lora_family"] == "peft" and data["lora"]["alphas"] == [8.0]
    assert "adapter_config.json" in data["uploaded_files"]
    published = json.loads(hub.read_file("model", repo, "adapter_config.json", data["commit"]))
    assert published["lora_alpha"] == 8
