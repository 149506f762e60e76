"""The Python API takes a `pathlib.Path` wherever it takes a local directory. An outsider's
`upload_editing_dataset(root, Path("out"))` was a pydantic "Input should be a valid string", and
`load_editing_dataset(Path(...))` / `download_lora(Path(...))` an AttributeError traceback. A Path
names a local directory whatever its spelling: `Path("out")` is `./out`, never a Hub repo id."""

from __future__ import annotations

import pytest

from hubpress.api import download_lora, load_editing_dataset, upload_editing_dataset, upload_lora_safetensors
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora


@pytest.mark.usefixtures("prefect_harness")
def test_path_objects_are_local_directories_in_every_call(tmp_cwd):
    from pathlib import Path

    write_dataset(tmp_cwd / "src", samples=2)
    result = upload_editing_dataset(Path("src"), Path("out") / "face-seg")
    assert result["target"] == "./out/face-seg" and result["commit"]
    assert load_editing_dataset(Path("out/face-seg"), split="train").num_rows == 2

    weights = write_lora(tmp_cwd / "w.safetensors", seed=4)
    (tmp_cwd / "train_config.yaml").write_text("lr: 1e-4\n")
    extra = {Path("train_config.yaml"): Path("config") / "train.yaml"}
    assert upload_lora_safetensors(Path("w.safetensors"), Path("lora"), extra_files=extra) == "lora"
    assert (tmp_cwd / "lora" / "config" / "train.yaml").read_text() == "lr: 1e-4\n"
    downloaded = download_lora(Path("lora"))
    assert Path(downloaded) == tmp_cwd / "lora" / "pytorch_lora_weights.safetensors"
    assert Path(downloaded).read_bytes() == weights.read_bytes()
