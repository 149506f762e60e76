"""`--remote-name` must keep the .safetensors extension: loaders choose the format by the name
(diffusers and PEFT unpickle anything else), so safetensors bytes published as `x.bin` or `x` could
not be loaded. Refused as an option value (exit 2, one line), before Prefect and before any repo."""

from __future__ import annotations

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli


@pytest.mark.parametrize("name", ["weights.bin", "lora", "sub/model.pt"])
def test_a_remote_name_without_safetensors_is_refused(tmp_path, name):
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", rank=2)
    target = tmp_path / "published"
    code, out, err = run_cli("publish-lora", str(weights), str(target), "--remote-name", name)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: remote_name: {name!r} does not end in .safetensors: the weights are safetensors, and "
        "loaders read a file by its extension. Name it e.g. my_lora.safetensors."
    ]
    assert not target.exists() and not (tmp_path / ".published.hubpress").exists()
