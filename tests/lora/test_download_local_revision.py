"""`download-lora TARGET --revision R` on a local target hands over the files of revision R (a tag,
or a version id the target keeps), and refuses a revision the target does not hold: it never
answers with the current files instead, as it did (silently) before."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubpress.api import download_lora, upload_lora_safetensors
from hubpress.errors import SourceError
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli


@pytest.mark.usefixtures("prefect_harness")
def test_a_local_target_answers_the_revision_asked_for(tmp_path):
    target = tmp_path / "lora-out"
    first = write_lora(tmp_path / "one" / "pytorch_lora_weights.safetensors", rank=2)
    second = write_lora(tmp_path / "two" / "pytorch_lora_weights.safetensors", rank=4)
    upload_lora_safetensors(str(first), str(target), tag="step-100")
    upload_lora_safetensors(str(second), str(target))

    assert Path(download_lora(str(target))).read_bytes() == second.read_bytes()
    tagged = download_lora(str(target), revision="step-100")
    assert Path(tagged).read_bytes() == first.read_bytes()

    with pytest.raises(SourceError, match="has no revision 'step-3000'"):
        download_lora(str(target), revision="step-3000")
    code, out, err = run_cli("download-lora", str(target), "--revision", "step-3000")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert "has no revision 'step-3000'" in err and "omit the revision" in err
    code, out, _ = run_cli("download-lora", str(target), "--revision", "../../etc")
    assert code == 1 and out == ""
