"""A refresh materializes its target as a Prefect asset and names each upstream Hub dataset as an
asset dependency: the events arrive on the (harness) server with the commit and counts."""

from __future__ import annotations

import uuid

import pytest

from hubpress.flows.params import RefreshParams
from hubpress.flows.refresh_dataset import refresh_dataset
from tests.orchestration.test_assets import REFERENCED, SUCCEEDED, asset_events
from tests.refresh.test_refresh_flow import QUALITY, captioned_rows, hf_backend, push

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_refresh_names_its_upstream_datasets_as_asset_dependencies(hub, write_token, tmp_path):
    rows, features = captioned_rows(8)
    upstream = push(rows, features)
    repo = f"alice/refreshed-assets-{uuid.uuid4().hex[:8]}"
    params = RefreshParams(config=hf_backend(upstream, tmp_path, huggingface=QUALITY), target=repo, seed=3)
    first = refresh_dataset(params)
    assert first["commit"]

    [event] = asset_events(f"hf://datasets/{repo}", SUCCEEDED, expect=1)
    assert event.payload["commit"] == first["commit"] == hub.head("dataset", repo)
    assert event.payload["samples"] == {"train": first["samples"]["train"]} == {"train": 3}
    assert [r.id for r in event.related if r.role == "asset"] == [f"hf://datasets/{upstream}"]
    assert asset_events(f"hf://datasets/{upstream}", REFERENCED, expect=1)

    # Nothing changed upstream: no commit, no second materialization.
    assert refresh_dataset(params)["nothing_changed"]
    assert len(asset_events(f"hf://datasets/{repo}", SUCCEEDED, expect=2, attempts=6)) == 1
