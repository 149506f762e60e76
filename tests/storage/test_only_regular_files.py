"""Only regular files are read: a /dev/zero symlink, a FIFO or a socket inside a source tree, a
local target or a training output is reported or refused in one line, never read forever.

Through the CLI (scan, publish-dataset to a local target, release from a local training output,
publish-lora), each bounded by pytest-timeout: before the fix, each of these never ended.
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(300)


def _socket_file(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def test_scan_reports_devices_fifos_and_sockets_and_reads_none(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=3)
    images = src / "train" / "training_images"
    (images / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(images / "pipe.png")
    sock = _socket_file(images / "sock.png")
    try:
        code, out, err = run_cli("scan", str(src), "--json")
    finally:
        sock.close()
    assert code == 0, err
    by_path = {p["path"]: p for p in json.loads(out)["problems"]}
    for name, what in (("zero.png", "character device"), ("pipe.png", "FIFO"), ("sock.png", "socket")):
        problem = by_path[f"train/training_images/{name}"]
        assert problem["kind"] == "not_regular_file"
        assert what in problem["detail"]
    assert json.loads(out)["splits"]["train"]["samples"] == 3  # the real samples are all there


@pytest.mark.usefixtures("prefect_harness")
def test_a_device_inside_an_existing_local_target_is_refused_in_one_line(tmp_path):
    src, target = tmp_path / "src", tmp_path / "out" / "ds"
    write_dataset(src, samples=2)
    code, _, err = run_cli("publish-dataset", str(src), str(target))
    assert code == 0, err
    (target / "data" / "zero.parquet").symlink_to("/dev/zero")
    write_dataset(src, samples=3)  # something to publish
    code, out, err = run_cli("publish-dataset", str(src), str(target))
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and "zero.parquet" in lines[0] and "not a regular file" in lines[0], err


@pytest.mark.usefixtures("prefect_harness")
def test_release_reports_a_config_that_is_a_device_and_does_not_read_it(tmp_path):
    run = tmp_path / "run"
    weights = write_lora(run / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=2)
    assert weights.is_file()
    (run / "config.yaml").symlink_to("/dev/zero")
    os.mkfifo(run / "metrics.json")
    code, out, err = run_cli("release", str(run), "--repo", str(tmp_path / "out" / "lora"), "--json")
    assert code == 0, err
    result = json.loads(out)
    problems = " ".join(result["problems"])
    assert "'config.yaml' is a character device" in problems
    assert "'metrics.json' is a FIFO" in problems
    assert not (tmp_path / "out" / "lora" / "train_config.yaml").exists()


def test_open_regular_refuses_without_blocking(tmp_path):
    """The gate itself: a FIFO with no writer would block a plain open() forever."""
    from hubpress.storage.regular import NotRegularFile, read_regular

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    for name in ("fifo", "zero"):
        with pytest.raises(NotRegularFile, match="not a regular file"):
            read_regular(tmp_path / name)
    (tmp_path / "plain").write_bytes(b"abc")
    assert read_regular(tmp_path / "plain") == b"abc"
