"""`hubpress.api.load_editing_dataset` on a local target that is not there: one short SourceError
naming the path, not datasets' search of the Hub for a repo named like the path."""

from __future__ import annotations

import pytest

from hubpress.api import load_editing_dataset
from hubpress.errors import SourceError


@pytest.mark.parametrize("given", ["./nothere", "nothere-abs", "file-url"])
def test_a_missing_local_target_is_one_short_error(tmp_path, monkeypatch, given):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nothere"
    target = {"./nothere": "./nothere", "nothere-abs": str(missing), "file-url": missing.as_uri()}[given]
    with pytest.raises(SourceError) as raised:
        load_editing_dataset(target, split="train")
    message = str(raised.value)
    assert message == (
        f"{missing} is not a directory: give the local target a publish wrote (./path), or a Hub repo id (org/name)."
    )
    assert not missing.exists()
