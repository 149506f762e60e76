"""Each target has its own artifact keys, so the Artifacts page's "latest" of a key is one repo's
latest run, not whichever repo ran last. Two publishes to two targets through the CLI leave two
summary artifacts, each naming its own target."""

from __future__ import annotations

import json
import os

import pytest

from hubpress.commands.cli import main as cli
from hubpress.orchestration.artifacts import repo_key
from hubpress.testdata.synth import write_dataset


def artifacts_like(prefix: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix)))


def test_two_targets_summaries_are_separate_artifacts(tmp_cwd, capsys, monkeypatch, prefect_harness):
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"))
    write_dataset(tmp_cwd / "src", samples=3, image_size=16, seed=2)
    targets = [str(tmp_cwd / "out" / "faces-a"), str(tmp_cwd / "out" / "faces-b")]
    for target in targets:
        with pytest.raises(SystemExit) as exit_:
            cli(["publish-dataset", "./src", target, "--json"])
        assert exit_.value.code in (0, None), capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["commit"]

    keys = [repo_key("publish-summary", target) for target in targets]
    assert len(set(keys)) == 2 and all(k.startswith("publish-summary-") for k in keys)
    for key, target in zip(keys, targets, strict=True):
        found = [a for a in artifacts_like(key) if a.key == key]
        assert len(found) == 1, [a.key for a in found]
        assert found[0].description == f"publish-dataset {target}"
        plans = [a for a in artifacts_like(repo_key("publish-plan", target)) if a.key]
        assert plans and all(target in (a.description or "") for a in plans)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("acme-org/Face_Seg.v2", "publish-summary-acme-org-face-seg-v2"),
        ("hf://datasets/acme-org/faces", "publish-summary-acme-org-faces"),
    ],
)
def test_a_repo_key_is_a_slug_prefect_accepts(target, expected):
    assert repo_key("publish-summary", target) == expected


def test_long_paths_that_end_alike_keep_apart():
    one = repo_key("publish-summary", "/data/" + "x" * 120 + "/team-a/out/faces")
    two = repo_key("publish-summary", "/data/" + "y" * 120 + "/team-a/out/faces")
    assert one != two and len(one) <= 100 and len(two) <= 100
    assert all(c.islower() or c.isdigit() or c == "-" for c in one + two)
