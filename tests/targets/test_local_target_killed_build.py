"""A publish to a local directory killed while it copied files into the target (SIGKILL, power
loss) leaves its half-made version, `.build-*` in the target's versions store. On main nothing
removed it: every later publish skipped `.build-*` folders, as if one could still be in progress,
so a killed 300 MB LoRA publish left 143 MB there for good. A build only happens under the
target's lock, so one found by the process holding that lock is a dead run's, and goes."""

from __future__ import annotations

from hubpress.targets.local import LocalDir
from hubpress.targets.publish import publish_files
from tests.shard_helpers import staged_file, staged_manifest

A = "data/train-00000000000000aa.parquet"


def test_a_killed_runs_half_made_version_is_removed_by_the_next_publish(tmp_path):
    target = LocalDir(tmp_path / "out")
    files = [staged_file(tmp_path, A, b"A"), staged_manifest(tmp_path, [A])]
    first = publish_files(target, files, target_name="out", message="first", card=lambda old: "# card\n")
    assert first.commit
    versions = tmp_path / ".out.hubpress" / "versions"
    killed = versions / ".build-k1ll3d"  # what a commit killed mid-copy leaves
    (killed / "data").mkdir(parents=True)
    (killed / "data" / "weights.safetensors").write_bytes(b"half of a large file")

    changed = [staged_file(tmp_path, A, b"A2"), staged_manifest(tmp_path, [A])]
    again = publish_files(target, changed, target_name="out", message="again", card=lambda old: "# card\n")
    assert again.commit and (tmp_path / "out" / A).read_bytes() == b"A2"
    assert not killed.exists()
    assert not [p.name for p in versions.iterdir() if p.name.startswith(".build-")]
