"""The editing schema's parquet form held as data (hubpress.shards.editing_format) is what the
installed `datasets` computes from the editing Features: the schema and its `huggingface`
metadata, the writer options, the features' dict and the card's dataset_info. A datasets release
that changes any of them fails here."""

from __future__ import annotations

import pytest
from datasets import DatasetInfo, SplitDict, SplitInfo

from hubpress.shards import editing_format
from hubpress.shards.editing import editing_features
from hubpress.shards.parquet import writer_options


def test_schema_and_its_huggingface_metadata_are_datasets_own() -> None:
    theirs = editing_features().arrow_schema
    ours = editing_format.arrow_schema()
    assert ours.equals(theirs, check_metadata=True)
    assert ours.metadata == theirs.metadata  # the same bytes, key order included
    assert ours.serialize().to_pybytes() == theirs.serialize().to_pybytes()


def test_writer_options_and_features_are_datasets_own() -> None:
    assert editing_format.writer_options() == writer_options(editing_features())
    assert editing_features().to_dict() == editing_format.FEATURES_DICT
    assert editing_features()._to_yaml_list() == editing_format.FEATURES_YAML


@pytest.mark.parametrize(
    ("splits", "download_size"),
    [
        ([("train", 1234, 10)], 999),
        ([("train", 5, 2), ("test", 0, 0), ("validation", 7, 1)], 0),
        ([], 0),
    ],
)
def test_dataset_info_yaml_is_datasets_own(splits, download_size) -> None:
    split_dict = SplitDict()
    for name, num_bytes, num_examples in splits:
        split_dict.add(SplitInfo(name=name, num_bytes=num_bytes, num_examples=num_examples))
    theirs = DatasetInfo(
        features=editing_features(),
        splits=split_dict,
        download_size=download_size,
        dataset_size=sum(b for _, b, _ in splits),
    )._to_yaml_dict()
    assert editing_format.dataset_info_yaml_dict(splits, download_size) == theirs
    assert list(editing_format.dataset_info_yaml_dict(splits, download_size)) == list(theirs)
