"""A post-training release stages its checkpoint's files in `<staging>/release-<fingerprint>/`.
On main nothing ever removed that folder: a successful release left a copy of its weights there,
`hubpress staging list` did not show it and `hubpress staging clean --all` said "Removed 0" while
it stayed, so every release a trainer announced kept its checkpoint on the staging disk forever.
Now the release removes its stage once the target holds the files, and a stage a failed or killed
release kept is listed and swept by the staging policy, never while a live run names it."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

DAY = 24 * 3600


def _training_run(root: Path) -> Path:
    checkpoint = root / "run" / "checkpoint-100"
    checkpoint.mkdir(parents=True)
    write_lora(checkpoint / "pytorch_lora_weights.safetensors", rank=4)
    return root / "run"


def _release_stages(staging: Path) -> list[str]:
    return sorted(p.name for p in staging.glob("release-*")) if staging.exists() else []


def test_a_release_leaves_no_copy_of_its_weights_in_staging(tmp_path, monkeypatch):
    staging = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(staging))
    run = _training_run(tmp_path)

    code, out, err = run_cli("release", str(run), "--repo", str(tmp_path / "out-lora"), "--json")
    assert code == 0, err
    assert json.loads(out)["commit"]
    assert _release_stages(staging) == [] and not list(staging.glob("runs/*"))
    # Again: nothing to send, and still nothing kept.
    code, out, err = run_cli("release", str(run), "--repo", str(tmp_path / "out-lora"), "--json")
    assert code == 0 and json.loads(out)["commit"] is None, err
    assert _release_stages(staging) == []


def _stage(staging: Path, name: str, *, sealed: bool, age: float) -> Path:
    folder = staging / name
    folder.mkdir(parents=True)
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"w" * 1000)
    if sealed:
        (folder / "_complete.json").write_text(json.dumps({"fingerprint": name, "files": []}))
    then = time.time() - age
    for path in folder.iterdir():
        os.utime(path, (then, then))
    return folder


def test_a_release_stage_left_behind_is_listed_and_swept_by_the_policy(tmp_path, monkeypatch):
    staging = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(staging))
    old = _stage(staging, "release-" + "a" * 32, sealed=True, age=10 * DAY)  # a failed release, a week ago
    fresh = _stage(staging, "release-" + "b" * 32, sealed=True, age=3600)  # kept for a re-run
    half = _stage(staging, "release-" + "c" * 32, sealed=False, age=2 * 3600)  # killed while staging
    in_use = _stage(staging, "release-" + "d" * 32, sealed=True, age=10 * DAY)
    lease = staging / "runs" / "live-release" / "lease.json"
    lease.parent.mkdir(parents=True)
    lease.write_text(
        json.dumps(
            {"run": "live-release", "host": socket.gethostname(), "pid": os.getpid(), "renewed": time.time()}
            | {"keys": [in_use.name]}
        )
    )

    code, out, err = run_cli("staging", "list", "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert [s["stage"] for s in listing["release_stages"]] == sorted(
        p.name for p in (old, fresh, half, in_use)
    )
    assert [s["sealed"] for s in listing["release_stages"]] == [True, True, False, True]
    assert listing["release_bytes"] == 4000 + sum(
        (p / "_complete.json").stat().st_size for p in (old, fresh, in_use)
    )
    code, out, _ = run_cli("staging", "list")
    assert code == 0 and "4 release stage(s)" in out.splitlines()[0]
    assert f"  release stage {old.name}: sealed, 1.1 kB, 10 day(s) old" in out.splitlines()
    assert f"  release stage {half.name}: unsealed, 1.0 kB, 2 hour(s) old" in out.splitlines()

    code, out, err = run_cli("staging", "clean", "--json")
    assert code == 0, err
    removed = json.loads(out)
    assert removed["removed_release_stages"] == sorted([old.name, half.name])
    assert _release_stages(staging) == sorted([fresh.name, in_use.name])

    code, out, err = run_cli("staging", "clean", "--all")
    assert code == 0 and "1 release stage(s)" in out, (out, err)
    assert _release_stages(staging) == [in_use.name]  # a live run names it: never removed


def test_a_release_run_again_after_it_was_killed_reuses_its_stage_and_says_so(tmp_path, monkeypatch):
    from hubpress.lora.publish import prepare_release
    from hubpress.settings import get_settings

    staging = tmp_path / "staging"
    monkeypatch.setenv("HUBPRESS_STAGING", str(staging))
    run = _training_run(tmp_path)
    # What a release killed after its staging step leaves: the checkpoint's files, sealed.
    prepare_release(str(run), "latest", get_settings())
    [stage] = _release_stages(staging)

    code, out, err = run_cli("release", str(run), "--repo", str(tmp_path / "out-lora"))
    assert code == 0, err
    assert "reused the files an earlier run of this release had staged" in out
    assert _release_stages(staging) == []
    code, out, err = run_cli("release", str(run), "--repo", str(tmp_path / "out-lora"), "--json")
    assert code == 0 and json.loads(out)["stage_reused"] is False, err
