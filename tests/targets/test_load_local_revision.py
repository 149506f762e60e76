"""`load_editing_dataset(LOCAL_TARGET, revision=R)` loads the rows of revision R (a tag, or a
version id the target keeps), and refuses a revision the target does not hold: before, the
revision was ignored and the current rows came back as if they were R's."""

from __future__ import annotations

import pytest

from hubpress.api import load_editing_dataset, upload_editing_dataset
from hubpress.errors import SourceError
from hubpress.testdata.synth import write_dataset


@pytest.mark.usefixtures("prefect_harness")
def test_a_local_target_loads_the_revision_asked_for(tmp_path):
    target = str(tmp_path / "published")
    write_dataset(tmp_path / "v1", samples=2, image_size=16, seed=1)
    write_dataset(tmp_path / "v2", samples=3, image_size=16, seed=2)
    upload_editing_dataset(str(tmp_path / "v1"), target, tag="v1")
    upload_editing_dataset(str(tmp_path / "v2"), target)

    assert load_editing_dataset(target, split="train").num_rows == 3
    assert load_editing_dataset(target, split="train", revision="main").num_rows == 3
    assert load_editing_dataset(target, split="train", revision="v1").num_rows == 2
    with pytest.raises(SourceError, match="has no revision 'v0'"):
        load_editing_dataset(target, split="train", revision="v0")
