"""A published manifest.json (or README.md) that anyone with write access rewrote into something
hubpress cannot use: nested past any parser's depth, not UTF-8, larger than a document may be, or
JSON of the wrong shape. The next publish must neither crash nor delete anything: it treats the
file as saying nothing (every shard is its own again only when it can prove it), and finishes.

Through the CLI against the test Hub; the hostile file is an ordinary commit of a collaborator."""

from __future__ import annotations

import json
import uuid

import pytest

from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli
from tests.targets.test_owned_deletions import _commit_files, _hostile_listing_commit

pytestmark = pytest.mark.usefixtures("prefect_harness")

HOSTILE_MANIFESTS = {
    "nested": b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "not_utf8": b'{"files": {"data/\xff\xfe.parquet": {"sha256": "x"}}}',
    "wrong_shape": b'{"files": {"data/a.parquet": [1, 2]}, "splits": [1], "upstream": "x"}',
    "list": b"[1, 2, 3]",
    "huge": b'{"files": {}, "note": "' + b"x" * 17_000_000 + b'"}',  # over MAX_DOCUMENT_BYTES
    # stored in LFS (as a .gitattributes rule or a large file makes it): held to its sha256
    "lfs": b'{"files": {}, "note": "' + b"x" * 11_000_000 + b'"}',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_MANIFESTS))
def test_a_manifest_hubpress_cannot_use_stops_nothing_and_deletes_nothing(hub, write_token, tmp_path, kind):
    src = tmp_path / "src"
    write_dataset(src, samples=4, image_size=16, seed=7)
    repo = f"alice/bad-manifest-{uuid.uuid4().hex[:8]}"
    code, _, err = run_cli("publish-dataset", str(src), repo)
    assert code == 0, err
    before = set(hub.commit_history("dataset", repo)[0]["files"])
    _commit_files(repo, {"manifest.json": HOSTILE_MANIFESTS[kind]}, "a collaborator's manifest")

    code, out, err = run_cli("publish-dataset", str(src), repo, "--json")
    assert code == 0, err
    assert "Traceback" not in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["deleted_files"] == []
    assert before <= set(hub.commit_history("dataset", repo)[0]["files"])
    assert json.loads(hub.read_file("dataset", repo, "manifest.json"))["files"]


def test_a_card_that_is_not_utf8_stops_the_publish_in_one_line(hub, write_token, tmp_path):
    """A README.md hubpress cannot read back would be overwritten by a fresh card: the publish
    stops in one line naming it, and nothing is committed. (No client commits such a card: it is
    written straight into the test Hub's store, as a `git push` would.)"""
    src = tmp_path / "src"
    write_dataset(src, samples=4, image_size=16, seed=8)
    repo = f"alice/bad-card-{uuid.uuid4().hex[:8]}"
    code, _, err = run_cli("publish-dataset", str(src), repo)
    assert code == 0, err
    manifest = hub.read_file("dataset", repo, "manifest.json")
    _hostile_listing_commit(hub, repo, {"README.md": b"---\nlicense: mit\n---\n# Caf\xe9\n"}, manifest)
    head = hub.head("dataset", repo)
    write_dataset(src, samples=5, image_size=16, seed=8)
    code, out, err = run_cli("publish-dataset", str(src), repo)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert code != 0 and "Traceback" not in err, err
    assert len(lines) <= 2 and "README.md" in lines[-1] and "UTF-8" in lines[-1], err
    assert hub.head("dataset", repo) == head
