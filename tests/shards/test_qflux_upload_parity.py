"""What publish-dataset writes matches qflux's own upload where a reader can see it: image `path`
fields keep the source file names, and the card lists train before test, so `load_dataset`
returns train first (qflux pushes a DatasetDict of train, then test)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from hubpress.shards.card import split_order
from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN, run_cli


def test_split_order_cases():
    assert split_order(["test", "train"]) == ["train", "test"]
    assert split_order(["zeta", "test", "validation", "alpha", "train"]) == [
        "train",
        "validation",
        "test",
        "alpha",
        "zeta",
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_published_paths_and_split_order_match_qflux(hub, write_token, tmp_path):
    from datasets import Image, List, load_dataset

    src = tmp_path / "src"
    write_dataset(src, samples=6, seed=3, test_fraction=0.34, masks=True, extra_controls=1)
    repo = f"alice/parity-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    commit = json.loads(out.strip().splitlines()[-1])["commit"]

    dsd = load_dataset(repo, revision=commit, token=WRITE_TOKEN)
    assert list(dsd) == ["train", "test"]

    train = dsd["train"].cast_column("control_images", List(Image(decode=False)))
    train = train.cast_column("target_image", Image(decode=False)).cast_column(
        "control_mask", Image(decode=False)
    )
    controls = {p.name for p in (src / "train" / "control_images").iterdir()}
    targets = {p.name for p in (src / "train" / "training_images").iterdir() if p.suffix != ".txt"}
    for row in train:
        names = [c["path"] for c in row["control_images"]]
        assert set(names) <= controls and names[0] == next(n for n in controls if Path(n).stem == row["id"])
        assert row["target_image"]["path"] in targets and Path(row["target_image"]["path"]).stem == row["id"]
        if row["control_mask"] is not None:
            assert row["control_mask"]["path"] == f"{row['id']}_mask.png"
