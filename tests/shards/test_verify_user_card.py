"""A card's front matter is the user's as much as hubpress's: what the user keeps there (merge_card
keeps it) and datasets reads must not stop a publish's verification, first night or changed night."""

from __future__ import annotations

import shutil

import pytest

from hubpress.flows.params import PublishDatasetParams
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.testdata.synth import write_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_card_with_keys_of_several_yaml_types_is_verified_each_night(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    src, extra = tmp_path / "src", tmp_path / "extra"
    write_dataset(src, samples=4, image_size=16, seed=4)
    write_dataset(extra, samples=1, image_size=16, seed=40)
    out = tmp_path / "out"
    out.mkdir()
    # a user's changelog keyed by YAML values of several types: a year, a date, a string
    (out / "README.md").write_text(
        "---\nlicense: mit\nchangelog:\n  2024: first release\n  2025-01-31: refresh\n  next: more\n---\n"
        "Our notes\n"
    )
    params = PublishDatasetParams(source=str(src), target=str(out), max_shard_size="20KB")

    first = publish_dataset(params)
    assert first["commit"] and first["samples"] == {"train": 4}
    for f in extra.glob("train/*/s000000*"):
        shutil.copy(f, src / "train" / f.parent.name / f"zz_{f.name}")
    with caplog.at_level("INFO", logger="hubpress.dataset"):
        night = publish_dataset(params)
    assert night["commit"] and night["samples"] == {"train": 5}
    assert "by its footers and card, shaped as the parent's" in caplog.text
    card = (out / "README.md").read_text()
    assert "  2024: first release" in card and "Our notes" in card

    from hubpress.api import load_editing_dataset

    assert load_editing_dataset(str(out), split="train").num_rows == 5


def test_front_matter_keyed_by_a_year_is_kept_as_text_and_the_dataset_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    write_dataset(src, samples=3, image_size=16, seed=3)
    out = tmp_path / "out"
    out.mkdir()
    # datasets reads the front matter's keys as keyword arguments: `2024:` fails every load
    (out / "README.md").write_text("---\n2024: first release\nlicense: mit\n---\nOur notes\n")

    result = publish_dataset(PublishDatasetParams(source=str(src), target=str(out)))
    assert result["commit"] and result["samples"] == {"train": 3}
    card = (out / "README.md").read_text()
    assert "2024: first release" in card and "Our notes" in card  # the user's text, kept

    from hubpress.api import load_editing_dataset

    assert load_editing_dataset(str(out), split="train").num_rows == 3
