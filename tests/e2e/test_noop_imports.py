"""An unchanged publish (dataset or LoRA) is cheap: in a fresh process, against the test harness's
Prefect server, it ends after the cheapest check and never imports `datasets`, pandas,
pyarrow or numpy."""

from __future__ import annotations

import uuid

import pytest

from hubpress.flows.params import PublishDatasetParams, PublishLoraParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.flows.publish_lora import publish_lora
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.e2e.fresh_process import run_fresh

pytestmark = pytest.mark.usefixtures("prefect_harness")

# What a no-op does not use (#15: "no import of datasets or pyarrow on paths that do not need them").
HEAVY = ("datasets", "pandas", "pyarrow", "numpy")

SCRIPT = """
import json, sys
from hubpress.flows.params import PublishDatasetParams, PublishLoraParams
if sys.argv[1] == "dataset":
    from hubpress.flows.publish_dataset import publish_dataset
    result = publish_dataset(PublishDatasetParams(source=sys.argv[2], target=sys.argv[3]))
    unchanged = result["listing_unchanged"]
else:
    from hubpress.flows.publish_lora import publish_lora
    result = publish_lora(PublishLoraParams(src_path=sys.argv[2], target=sys.argv[3]))
    unchanged = result["unchanged"]
loaded = sorted(m for m in sys.argv[4].split(",") if m in sys.modules)
print("RESULT " + json.dumps({"unchanged": unchanged, "commit": result["commit"], "loaded": loaded}))
"""


def _run_fresh(kind: str, source: str, target: str) -> dict:
    return run_fresh(SCRIPT, kind, source, target, ",".join(HEAVY))


@pytest.fixture
def own_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))


def test_unchanged_dataset_publish_does_not_import_datasets(hub, tmp_path, write_token, own_dirs):
    src = tmp_path / "src"
    write_dataset(src, samples=6, image_size=16, seed=5)
    repo = f"alice/noop-{uuid.uuid4().hex[:8]}"
    first = publish_dataset(PublishDatasetParams(source=str(src), target=repo))
    assert first["commit"]

    hub.reset_stats()
    again = _run_fresh("dataset", str(src), repo)
    assert again == {"unchanged": True, "commit": None, "loaded": []}
    assert sum(hub.stats.requests.values()) == 1 and hub.stats.commits == 0


def test_unchanged_lora_publish_does_not_import_datasets(hub, tmp_path, write_token, own_dirs):
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", rank=4)
    repo = f"alice/noop-lora-{uuid.uuid4().hex[:8]}"
    assert publish_lora(PublishLoraParams(src_path=str(weights), target=repo))["commit"]

    hub.reset_stats()
    again = _run_fresh("lora", str(weights), repo)
    assert again == {"unchanged": True, "commit": None, "loaded": []}
    assert sum(hub.stats.requests.values()) == 1 and hub.stats.commits == 0
