"""The release card's gallery: the training samples a run produced are published under samples/
and listed as the `widget` entries the Hub renders, each pointing at a file of the repo; the
release is also a Prefect asset materialization of the model repo."""

import io
import json
import uuid

import pytest
from huggingface_hub import HfApi
from PIL import Image

from hubpress.shards.cards import split_front_matter
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, run_cli
from tests.orchestration.test_assets import SUCCEEDED, asset_events

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.lfs
def test_release_card_widget_points_at_published_samples(hub, tmp_path, write_token):
    run = tmp_path / "run"
    checkpoint = run / "checkpoint-200"
    checkpoint.mkdir(parents=True)
    write_lora(checkpoint / "pytorch_lora_weights.safetensors", rank=4)
    colours = {"edit_a.png": (220, 40, 40), "edit_b.png": (40, 40, 220)}
    (checkpoint / "samples").mkdir()
    for name, colour in colours.items():
        Image.new("RGB", (32, 32), colour).save(checkpoint / "samples" / name)
    repo = f"alice/gallery-{uuid.uuid4().hex[:8]}"

    code, out, err = run_cli("release", str(run), "--repo", repo, "--json")
    assert code == 0, err
    commit = json.loads(out)["released_commit"]

    meta, body = split_front_matter(hub.read_file("model", repo, "README.md").decode())
    urls = [entry["output"]["url"] for entry in meta["widget"]]
    assert urls == [f"samples/{name}" for name in sorted(colours)]
    files = {f.path for f in HfApi(token=WRITE_TOKEN).list_repo_tree(repo, recursive=True)}
    assert set(urls) <= files
    for url in urls:
        with Image.open(io.BytesIO(hub.read_file("model", repo, url))) as img:
            assert img.convert("RGB").getpixel((16, 16)) == colours[url.rsplit("/", 1)[-1]]
        assert f"]({url})" in body or f"](<{url}>)" in body

    [event] = asset_events(f"hf://models/{repo}", SUCCEEDED, expect=1)
    assert event.payload["commit"] == commit and event.payload["tag"] == "step-200"
    assert [r.id for r in event.related if r.role == "asset"] == [f"file://{run}"]
