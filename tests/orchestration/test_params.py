"""Every flow's parameter model refuses the same bad values the same way (and the UI gets the
same message the CLI prints)."""

import pytest
from pydantic import ValidationError

from hubpress.flows.params import (
    PublishDatasetParams,
    PublishLoraParams,
    RefreshParams,
    ReleaseTrainingRunParams,
)

MODELS = {
    "dataset": lambda target, **kw: PublishDatasetParams(source="./src", target=target, **kw),
    "lora": lambda target, **kw: PublishLoraParams(src_path="./w.safetensors", target=target, **kw),
    "release": lambda target, **kw: ReleaseTrainingRunParams(output_uri="./run", repo_id=target, **kw),
    "refresh": lambda target, **kw: RefreshParams(config="./backends.json", target=target, **kw),
}


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("target", ["bad repo", "org/../x", "org/name/extra", ""])
def test_bad_targets_are_refused_by_every_model(model, target):
    with pytest.raises(ValidationError):
        MODELS[model](target)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("target", ["org/name", "./out", "/abs/out", "file:///tmp/out"])
def test_good_targets_are_accepted_by_every_model(model, target):
    assert MODELS[model](target)


@pytest.mark.parametrize("model", ["dataset", "refresh"])
def test_shard_sizes_are_checked(model):
    with pytest.raises(ValidationError, match="is not a size"):
        MODELS[model]("org/name", max_shard_size="lots")
    assert MODELS[model]("org/name", max_shard_size="1GB")


def test_release_select_is_checked():
    with pytest.raises(ValidationError):
        ReleaseTrainingRunParams(output_uri="./run", repo_id="org/m", select="best")
    assert ReleaseTrainingRunParams(output_uri="./run", repo_id="org/m", select="best:loss:min")
