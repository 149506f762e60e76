"""The consumers themselves load what hubpress publishes: PEFT (PeftModel.from_pretrained,
load_peft_weights) and diffusers' Qwen-Image LoRA loader, run on CPU against the test Hub.

They need the optional `consumers` extra (torch CPU, peft, diffusers: `make consumers`); without
torch they are skipped with a message. tests/lora/test_lora_loaders.py checks the same files with
the consumers' behaviour encoded as cases, and runs everywhere.
"""

from __future__ import annotations

import json
import uuid

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, run_cli

SKIP = "needs the optional consumers extra (torch CPU, peft, diffusers): run `make consumers`"
torch = pytest.importorskip("torch", reason=f"torch is not installed; {SKIP}")
peft = pytest.importorskip("peft", reason=f"peft is not installed; {SKIP}")
diffusers = pytest.importorskip("diffusers", reason=f"diffusers is not installed; {SKIP}")


def tiny():
    torch.manual_seed(0)
    return torch.nn.ModuleDict({"to_q": torch.nn.Linear(8, 8), "to_v": torch.nn.Linear(8, 8)})


def publish(path, *args: str) -> tuple[str, dict]:
    repo = f"alice/consumer-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-lora", str(path), repo, "--json", *args)
    assert code == 0, err
    return repo, json.loads(out.strip().splitlines()[-1])


@pytest.mark.usefixtures("prefect_harness")
def test_peft_loads_a_published_peft_adapter(hub, write_token, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.utils import load_peft_weights

    trained = get_peft_model(
        tiny(), LoraConfig(r=2, lora_alpha=4, target_modules=["to_q", "to_v"], init_lora_weights=False)
    )
    trained.save_pretrained(str(tmp_path / "adapter"))
    repo, data = publish(tmp_path / "adapter")
    assert data["lora_family"] == "peft"

    loaded = PeftModel.from_pretrained(tiny(), repo, token=WRITE_TOKEN)
    x = torch.randn(3, 8)
    expected = trained.base_model.model["to_q"](x)
    assert torch.allclose(loaded.base_model.model["to_q"](x), expected)
    assert not torch.allclose(tiny()["to_q"](x), expected)  # the adapter changes the output
    weights = load_peft_weights(repo, token=WRITE_TOKEN)
    assert len(weights) == 4 and all(".lora_" in k for k in weights)


def qwen_transformer():
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    return QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        axes_dims_rope=(2, 2, 4),
    )


def lora_modules(transformer) -> int:
    return sum(1 for _, m in transformer.named_modules() if hasattr(m, "lora_A") and "default_0" in m.lora_A)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("naming", ["peft", "kohya", "diffusers", "lokr", "peft_adapter"])
def test_diffusers_qwen_loader_reads_what_the_card_claims(hub, write_token, tmp_path, naming):
    """The card claims diffusers for PEFT-style and kohya names (all 8 modules load), and not for
    LyCORIS LoKr, which diffusers' Qwen-Image loader refuses, nor for PEFT's base_model.model names
    without their adapter_config.json, of which it loads none (with only a warning)."""
    from diffusers import QwenImagePipeline

    weights = write_lora(
        tmp_path / "pytorch_lora_weights.safetensors", naming=naming, rank=2, modules=8, hidden=16
    )
    repo, data = publish(weights, "--base-model", "Qwen/Qwen-Image-Edit")
    card = hub.read_file("model", repo, "README.md", data["commit"]).decode()
    transformer = qwen_transformer()
    if naming == "lokr":
        assert "library_name: diffusers" not in card
        with pytest.raises(ValueError):
            state = QwenImagePipeline.lora_state_dict(repo, weight_name=weights.name, token=WRITE_TOKEN)
            QwenImagePipeline.load_lora_into_transformer(state, transformer=transformer)
        return
    if naming == "peft_adapter":
        assert "library_name: diffusers" not in card
        state = QwenImagePipeline.lora_state_dict(repo, weight_name=weights.name, token=WRITE_TOKEN)
        QwenImagePipeline.load_lora_into_transformer(state, transformer=transformer)
        assert lora_modules(transformer) == 0
        return
    assert "library_name: diffusers" in card
    state = QwenImagePipeline.lora_state_dict(repo, weight_name=weights.name, token=WRITE_TOKEN)
    QwenImagePipeline.load_lora_into_transformer(state, transformer=transformer)
    assert lora_modules(transformer) == 8
