"""What a changed night's verification reads from the committed card instead of opening it with
datasets (hubpress.shards.verify): the card's shape, which leaves out only what every night
changes (each split's file list and sizes), and whether the card names exactly the manifest's
shards of each split."""

from __future__ import annotations

from hubpress.shards.card import DatasetCardInfo, SplitSummary, render_dataset_card
from hubpress.shards.verify import card_names_shards, card_shape


def _card(files: dict[str, tuple[str, ...]], rows: int = 3, existing: str | None = None, **info) -> str:
    splits = tuple(
        SplitSummary(name, rows, 10 * rows, 7, len(paths), 0, rows, 1, files=paths)
        for name, paths in files.items()
    )
    return render_dataset_card(existing, DatasetCardInfo(splits=splits, repo_id="alice/ds", **info))


def _manifest(files: dict[str, tuple[str, ...]]) -> dict:
    return {path: {"split": split, "num_rows": 1} for split, paths in files.items() for path in paths}


def test_a_night_keeps_the_shape_and_the_card_names_its_shards() -> None:
    before = {"train": ("data/train-aaaa.parquet", "data/train-bbbb.parquet")}
    after = {"train": ("data/train-aaaa.parquet", "data/train-cccc.parquet", "data/train-dddd.parquet")}
    assert card_shape(_card(before)) == card_shape(_card(after, rows=5)) is not None
    assert card_names_shards(_card(after), _manifest(after)) == []
    assert card_names_shards(_card(before), {"manifest.json": {}, **_manifest(before)}) == []


def test_what_datasets_would_open_differently_changes_the_shape() -> None:
    files = {"train": ("data/train-aaaa.parquet",)}
    shape = card_shape(_card(files))
    assert card_shape(_card({**files, "test": ("data/test-aaaa.parquet",)})) != shape  # a new split
    assert card_shape(_card(files, license="mit")) != shape
    user_config = "---\nconfigs:\n- config_name: extra\n  data_files: other/*.parquet\n---\n"
    assert card_shape(_card(files, existing=user_config)) == card_shape(_card(files, existing=user_config))
    edited = _card(files).replace("config_name: default", "config_name: default\n  sep: ';'")
    assert card_shape(edited) != shape
    assert card_shape("no front matter") is None


def test_a_card_that_does_not_name_the_committed_shards_is_refused() -> None:
    files = {"train": ("data/train-aaaa.parquet", "data/train-bbbb.parquet")}
    manifest = _manifest(files)
    assert card_names_shards(_card({"train": files["train"][:1]}), manifest)
    assert card_names_shards(_card({"train": (*files["train"], "data/train-zzzz.parquet")}), manifest)
    assert card_names_shards(_card({**files, "test": ("data/test-aaaa.parquet",)}), manifest)
    twice = _card(files).replace(
        "- data/train-bbbb.parquet", "- data/train-bbbb.parquet\n    - data/train-bbbb.parquet"
    )
    assert card_names_shards(twice, manifest)
    assert card_names_shards(_card({"train": ()}), manifest)  # a glob, not the shards by name
    assert card_names_shards("no front matter", manifest)
