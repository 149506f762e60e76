"""`hubpress staging clean --all` in a folder that also holds the user's own files (`--staging .`
in a project folder, or HUBPRESS_STAGING set to a shared data folder): it removes only what
hubpress made. On main every folder under `runs/` without a lease was "a run writing its first
lease" to --all, so a project's training outputs in `./runs/42/` (the README's own example of a
training run) were deleted, weights and all, and the command said "1 ended run folder(s)"."""

from __future__ import annotations

import json
import uuid

from tests.conftest import run_cli


def test_clean_all_leaves_folders_hubpress_did_not_make(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "runs" / "42" / "checkpoint-100" / "pytorch_lora_weights.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"the only copy of a week of training")
    notes = tmp_path / "release-2024" / "notes.md"
    notes.parent.mkdir()
    notes.write_text("what went out in 2024")
    own = tmp_path / "runs" / uuid.uuid4().hex  # a run of hubpress's, killed before its lease
    own.mkdir()
    (own / "manifest.json").write_text("{}")
    # and one with a dead run's lease (a run id of Prefect's form): hubpress's, by its lease
    dead = tmp_path / "runs" / str(uuid.uuid4())
    dead.mkdir()
    (dead / "lease.json").write_text(
        json.dumps({"run": dead.name, "host": "elsewhere", "pid": 1, "renewed": 0, "keys": []})
    )

    code, out, err = run_cli("staging", "list", "--staging", ".")
    assert code == 0, err
    assert "run 42: not a hubpress run folder (no lease): left alone" in out

    code, out, err = run_cli("staging", "clean", "--all", "--staging", ".", "--json")
    assert code == 0, err
    removed = json.loads(out)
    assert sorted(removed["removed_runs"]) == sorted([own.name, dead.name])
    assert removed["removed_release_stages"] == []
    assert weights.read_bytes() == b"the only copy of a week of training"
    assert notes.read_text() == "what went out in 2024"
    assert not own.exists() and not dead.exists()


def test_a_staging_location_is_swept_of_hubpress_temp_files_only(tmp_path, monkeypatch):
    """Opening a staging location removed every hidden `*.tmp` file over an hour old anywhere
    below it: `hubpress staging list --staging .` (a listing) deleted a project's
    `data/.report.tmp`, and walked every folder of a shared data directory to find them."""
    import os
    import time

    monkeypatch.chdir(tmp_path)
    then = time.time() - 2 * 3600
    theirs = tmp_path / "data" / ".report.tmp"
    ours = [
        tmp_path / "shards" / "ab" / (".ab" + "0" * 62 + ".parquet.123.parquet.tmp"),
        tmp_path / "runs" / uuid.uuid4().hex / ".manifest.json.x1.tmp",
        tmp_path / ("release-" + "f" * 32) / ".pytorch_lora_weights.safetensors.x2.tmp",
    ]
    for path in (theirs, *ours):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
        os.utime(path, (then, then))

    code, out, err = run_cli("staging", "list", "--staging", ".")
    assert code == 0, err
    assert theirs.read_text() == "partial"
    assert [p for p in ours if p.exists()] == []
