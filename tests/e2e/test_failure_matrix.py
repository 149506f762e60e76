"""Every data command against the failures a machine brings: a closed port for the Hub, a
read-only staging/cache disk and a full one. Each run must end with exit 1 or 2, no traceback
(without --debug), at most two lines on stderr, and no temporary file left behind.

The disks are small tmpfs mounts (the tests run as root here and in CI); where mounting is not
allowed the disk cases are skipped with a message (the closed port still runs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN

pytestmark = pytest.mark.usefixtures("prefect_harness")

TEMP_MARKS = (".tmp", ".build-", "hubpress-", ".record-", ".shard-", ".tmp-")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket goes


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _fill(path: Path) -> None:
    """Write until the disk is full: every later write of data fails with ENOSPC."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    base = tmp_path_factory.mktemp("disks")
    ro, full = base / "ro", base / "full"
    if not (_mount(ro, "ro,size=1m") and _mount(full, "size=256k")):
        for p in (ro, full):
            subprocess.run(["umount", str(p)], capture_output=True)
        pytest.skip("tmpfs cannot be mounted here (needs root): the disk cases are not run")
    try:
        _fill(full)
        yield {"ro": ro, "full": full}
    finally:
        for p in (ro, full):
            subprocess.run(["umount", str(p)], capture_output=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    write_dataset(root / "src", samples=4)
    weights = write_lora(root / "w" / "pytorch_lora_weights.safetensors", seed=5)
    run = root / "run" / "checkpoint-10"
    run.mkdir(parents=True)
    (run / "pytorch_lora_weights.safetensors").write_bytes(weights.read_bytes())
    config = root / "refresh.json"
    config.write_text(
        json.dumps(
            {
                "id": "up",
                "type": "huggingface",
                "dataset_name": "alice/matrix-upstream",
                "caption_strategy": "huggingface",
                "metadata_backend": "huggingface",
                "caption_column": "caption",
            }
        )
    )
    return root


def commands(inputs: Path, repo: str) -> dict[str, list[str]]:
    return {
        "scan": ["scan", str(inputs / "src")],
        "publish-dataset": ["publish-dataset", str(inputs / "src"), repo],
        "publish-lora": ["publish-lora", str(inputs / "w"), repo],
        "download-lora": ["download-lora", repo],
        "release": ["release", str(inputs / "run"), "--repo", repo],
        "refresh": ["refresh", str(inputs / "refresh.json"), repo],
    }


def run_cli(args: list[str], env: dict[str, str], cwd: Path):
    from prefect.settings import PREFECT_API_URL

    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_TOKEN": WRITE_TOKEN, "PREFECT_API_URL": PREFECT_API_URL.value(), **env},
        timeout=300,
    )


def leftovers(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                if any(mark in name for mark in TEMP_MARKS):
                    found.append(os.path.join(dirpath, name))
    return found


def check(out, what: str) -> None:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode in (1, 2), f"{what}: exit {out.returncode}\n{out.stderr}"
    assert "Traceback" not in out.stderr, f"{what}:\n{out.stderr}"
    assert len(lines) <= 2, f"{what}: {len(lines)} lines on stderr\n{out.stderr}"


@pytest.mark.parametrize(
    "command", ["publish-dataset", "publish-lora", "download-lora", "release", "refresh"]
)
def test_closed_port(command, inputs, tmp_path):
    port = _closed_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HUBPRESS_STAGING": str(tmp_path / "staging"),
        "HUBPRESS_CACHE_DIR": str(tmp_path / "cache"),
        "TMPDIR": str(tmp),
    }
    out = run_cli(commands(inputs, "alice/never")[command], env, tmp_path)
    check(out, command)
    assert f"127.0.0.1:{port}" in out.stderr  # the line names the endpoint
    assert leftovers(tmp, tmp_path / "staging", tmp_path / "cache") == []


@pytest.mark.parametrize("disk", ["ro", "full", "full-staging"])
@pytest.mark.parametrize(
    "command", ["scan", "publish-dataset", "publish-lora", "download-lora", "release", "refresh"]
)
def test_read_only_and_full_disks(command, disk, disks, inputs, hub, tmp_path):
    repo = f"alice/matrix-{uuid.uuid4().hex[:8]}"
    if command in ("download-lora",):
        api = HfApi(token=WRITE_TOKEN)
        api.create_repo(repo)
        api.upload_file(
            path_or_fileobj=(inputs / "w" / "pytorch_lora_weights.safetensors").read_bytes(),
            path_in_repo="pytorch_lora_weights.safetensors",
            repo_id=repo,
        )
    if command == "refresh":
        from datasets import Dataset, Image
        from PIL import Image as PILImage

        images = [PILImage.new("RGB", (16, 16), (i * 60, 0, 0)) for i in range(2)]
        upstream = Dataset.from_dict({"image": images, "caption": ["a", "b"]}).cast_column("image", Image())
        upstream.push_to_hub("alice/matrix-upstream", token=WRITE_TOKEN)
    # full-staging: only staging is on the full disk (the caches are fine), so the build's own
    # writes (parquet shards, staged copies) are what fail.
    mount = disks["full" if disk == "full-staging" else disk]
    where = mount / uuid.uuid4().hex[:8]
    elsewhere = tmp_path if disk == "full-staging" else where
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        "HUBPRESS_STAGING": str(where / "staging"),
        "HUBPRESS_CACHE_DIR": str(elsewhere / "cache"),
        "HF_HOME": str(elsewhere / "hf-home"),
        "TMPDIR": str(tmp),
    }
    out = run_cli(commands(inputs, repo)[command], env, tmp_path)
    if disk == "full-staging" and command in ("scan", "publish-lora", "download-lora"):
        assert out.returncode == 0, out.stderr  # they never write to staging
        return
    check(out, f"{command} on a {disk} disk")
    assert str(mount) in out.stderr  # the line names the path
    assert leftovers(tmp, where) == []


def test_a_later_run_removes_the_temporary_files_a_crash_left(tmp_path):
    from hubpress.flows.params import PublishDatasetParams
    from hubpress.flows.publish_dataset import publish_dataset

    staging = tmp_path / "staging"
    # Where hubpress writes shards (only its own folders in staging are swept: hubpress.shards.staging)
    crashed = staging / "shards" / "ab"
    crashed.mkdir(parents=True)
    old = crashed / ".shard-crashed.parquet.tmp"
    old.write_bytes(b"half a shard")
    fresh = crashed / ".shard-writing.parquet.tmp"
    fresh.write_bytes(b"another run is writing this one")
    two_hours_ago = os.path.getmtime(old) - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    src = tmp_path / "src"
    write_dataset(src, samples=2)
    result = publish_dataset(
        PublishDatasetParams(source=str(src), target=str(tmp_path / "out"), staging=str(staging))
    )
    assert result["commit"] and not old.exists() and fresh.exists()


def test_local_targets_honour_the_umask(tmp_path):
    from hubpress.flows.params import PublishDatasetParams
    from hubpress.flows.publish_dataset import publish_dataset

    src = tmp_path / "src"
    write_dataset(src, samples=2)
    previous = os.umask(0o022)
    try:
        publish_dataset(PublishDatasetParams(source=str(src), target=str(tmp_path / "out")))
    finally:
        os.umask(previous)
    version = Path(os.path.realpath(tmp_path / "out"))
    assert version.stat().st_mode & 0o777 == 0o755
    data = next(version.rglob("*.parquet"))
    assert data.stat().st_mode & 0o044 == 0o044  # group and others can read what was published
