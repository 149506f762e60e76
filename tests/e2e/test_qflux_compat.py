"""The qflux guide as qflux behaves: its function names import from the package top level, an
empty prompt is a kept sample (a warning), a train sample without a target stays an error unless
allowed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hubpress.testdata.synth import write_dataset

QFLUX_NAMES = (
    "upload_editing_dataset",
    "upload_editing_dataset_from_csv",
    "load_editing_dataset",
    "upload_lora_safetensors",
    "download_lora",
)


def test_qflux_names_import_from_the_top_level():
    import hubpress
    import hubpress.api

    for name in QFLUX_NAMES:
        assert getattr(hubpress, name) is getattr(hubpress.api, name)
        assert name in dir(hubpress) and name in hubpress.__all__
    from hubpress import load_editing_dataset

    assert load_editing_dataset is hubpress.api.load_editing_dataset
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hubpress.nope  # noqa: B018
    with pytest.raises(ImportError):
        from hubpress import nope  # noqa: F401


def test_importing_hubpress_stays_cheap():
    code = (
        "import sys, hubpress\n"
        "heavy = ('datasets', 'prefect', 'flows', 'hubpress.api', 'huggingface_hub', 'pyarrow', 'torch')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "from hubpress import load_editing_dataset\n"
        "print('hubpress.api' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "True"]


@pytest.mark.usefixtures("prefect_harness")
def test_empty_prompt_is_kept_with_a_warning_and_loads(tmp_path):
    from hubpress import load_editing_dataset
    from hubpress.flows.params import PublishDatasetParams
    from hubpress.flows.publish_dataset import publish_dataset
    from hubpress.sources.intake import run_intake

    src = tmp_path / "src"
    summary = write_dataset(src, samples=6, seed=2, defects=("empty_prompt",), defect_count=2)
    empty = sorted(r.split("/", 1)[1] for r in summary.defects["empty_prompt"])
    report = run_intake(str(src))
    warnings = [p for p in report.problems if p.kind == "empty_prompt"]
    assert sorted(p.sample for p in warnings) == empty and all(p.severity == "warning" for p in warnings)
    assert not report.splits["train"].skipped

    out = tmp_path / "out"
    result = publish_dataset(PublishDatasetParams(source=str(src), target=str(out)))
    assert result["samples"] == {"train": 6} and result["skipped"] == {"train": 0}
    assert result["empty_prompts"] == {"train": 2}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["num_empty_prompts"] == 2
    ds = load_editing_dataset(str(out), split="train")
    prompts = dict(zip(ds["id"], ds["prompt"], strict=True))
    assert {i: prompts[i] for i in empty} == dict.fromkeys(empty, "")
    assert all(prompts[i] for i in prompts if i not in empty)


def test_train_sample_without_target_is_an_error_unless_allowed(tmp_path):
    from hubpress.sources.intake import run_intake

    write_dataset(tmp_path, samples=3, seed=1)
    (tmp_path / "train" / "training_images" / "s000001.png").unlink()
    report = run_intake(str(tmp_path))
    assert [(s.id, s.reasons) for s in report.splits["train"].skipped] == [("s000001", ["missing_target"])]
    allowed = run_intake(str(tmp_path), allow_missing_target=True)
    kept = {s.id: s.target for s in allowed.splits["train"].samples}
    assert set(kept) == {"s000000", "s000001", "s000002"} and kept["s000001"] is None
