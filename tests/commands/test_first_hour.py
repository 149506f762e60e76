"""What a newcomer does in the first hour: `make demo` twice, and the README's Python snippet pasted
into a plain script (no `if __name__ == "__main__":` guard) on data nobody has decoded yet.

Both run in child processes, as a user runs them, against the Hub-protocol test server; afterwards
no process they started may survive (decode workers, temporary Prefect servers).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, _free_port, harness_api

ROOT = Path(__file__).resolve().parents[2]


def readme_api_snippet() -> str:
    """The Python block of README.md that uses hubpress.api, exactly as a reader copies it."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    [snippet] = [b for b in blocks if "from hubpress.api import" in b]
    return snippet


def survivors(marker: str, timeout: float = 15.0) -> list[str]:
    """Processes (other than this one) whose environment carries `marker`: anything a child left.

    Processes that are on their way out get `timeout` seconds to finish exiting."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get("HUBPRESS_TEST_MARKER") == marker and proc.status() != "zombie":
                    found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:200]}")
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    """One PREFECT_HOME for the first hour, as a newcomer has one (~/.prefect): the first
    temporary server creates its database (every migration, several seconds), the later ones
    open it."""
    return tmp_path_factory.mktemp("first-hour-prefect-home")


def child_env(tmp_path: Path, marker: str, prefect_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # ephemeral mode: hubpress's process starts a temporary server
    env.update(
        {
            "HUBPRESS_TEST_MARKER": marker,
            "PREFECT_HOME": str(prefect_home),
            "HUBPRESS_PREFECT_DIR": str(tmp_path / "hubpress-prefect"),
            "HUBPRESS_STAGING": str(tmp_path / "staging"),
            "HUBPRESS_CACHE_DIR": str(tmp_path / "cache"),  # fresh: every image is decoded
            **extra,
        }
    )
    return env


@pytest.mark.slow
def test_readme_snippet_runs_as_a_plain_script_and_leaves_no_process(tmp_path, hub, prefect_home):
    work = tmp_path / "work"
    # Enough files that the decode workers start (a handful is checked inline).
    write_dataset(work / "face_seg", samples=24, image_size=32, seed=3)
    write_lora(work / "output" / "pytorch_lora_weights.safetensors", rank=4)
    (work / "train_config.yaml").write_text("learning_rate: 0.0001\n")
    script = work / "snippet.py"
    snippet = readme_api_snippet()
    assert "__main__" not in snippet
    # The test Hub gives the write token the namespace "alice" (as the Hub gives a user theirs).
    snippet = snippet.replace('"my-org/', '"alice/')
    script.write_text(snippet + "\nprint('rows', len(dsd['train']), len(train), 'lora', path)\n")

    marker = uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=child_env(tmp_path, marker, prefect_home, HF_TOKEN=WRITE_TOKEN),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bootstrapping phase" not in done.stderr and "BrokenProcessPool" not in done.stderr
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("rows ")][-1]
    _, rows, local_rows, _, path = line.split()
    assert int(rows) == int(local_rows) > 0
    assert Path(path).read_bytes() == (work / "output" / "pytorch_lora_weights.safetensors").read_bytes()
    assert hub.read_file("model", "alice/face-seg-lora", "train_config.yaml") == b"learning_rate: 0.0001\n"
    assert survivors(marker) == []


@pytest.mark.slow
def test_a_failing_script_leaves_no_process(tmp_path, hub, prefect_home):
    """The same script, failing half-way (the Hub refuses the token): one error, no process left."""
    work = tmp_path / "work"
    write_dataset(work / "face_seg", samples=24, image_size=32, seed=4)
    script = work / "snippet.py"
    script.write_text(
        "from hubpress.api import upload_editing_dataset\n"
        'upload_editing_dataset("face_seg", "./out/face-seg")\n'
        'upload_editing_dataset("face_seg", "alice/face-seg-refused")\n'
    )
    marker = uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=child_env(tmp_path, marker, prefect_home, HF_TOKEN="hf_refused_0000000000"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    assert (work / "out" / "face-seg" / "README.md").exists()  # the first call did its work
    assert "bootstrapping phase" not in done.stderr
    assert survivors(marker) == []


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_make_demo_twice(tmp_path, prefect_home):
    """`make demo` runs `python -m hubpress.commands.demo`; the second run finds everything unchanged.

    The first run is a user's first (its own temporary Prefect server, which must not outlive it).
    The second records its runs on the test harness's server instead: what it finds unchanged is
    in the demo's output folder, not in Prefect, and a temporary server of its own would cost
    another 8-16 s to prove again what the first run proves."""
    assert "$(BIN)/python -m hubpress.commands.demo" in (ROOT / "Makefile").read_text()
    out = tmp_path / "demo-output"
    marker = uuid.uuid4().hex
    env = child_env(tmp_path, marker, prefect_home)
    for var in ("HUBPRESS_STAGING", "HUBPRESS_CACHE_DIR"):  # the demo keeps them under its output
        env.pop(var)
    # As a user runs it: no server mode chosen (the demo says its flows run on a temporary server,
    # so it must not leave a lasting one running), and a HUBPRESS_HOME of its own.
    env.pop("HUBPRESS_PREFECT_SERVER", None)
    env["HUBPRESS_HOME"] = str(tmp_path / "hubpress-home")
    (tmp_path / "hubpress-prefect").mkdir(exist_ok=True)  # child_env's HUBPRESS_PREFECT_DIR
    (tmp_path / "hubpress-prefect" / "port").write_text(f"{_free_port()}\n")  # never the user's 4200
    runs = []
    for prefect_api in ({}, harness_api()):
        done = subprocess.run(
            [sys.executable, "-m", "hubpress.commands.demo", str(out)],
            cwd=tmp_path,
            env={**env, **prefect_api},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(done.stdout)
    first, second = runs
    assert "commit " in first and "bytes sent" in first
    # Second run: the dataset publishes (twice) and both LoRA publishes send nothing.
    assert second.count("unchanged, nothing sent") == 4, second
    assert re.search(r"publish 2: unchanged, nothing sent", first)
    assert second.count("matched the last publish: no file was read") == 1, second
    assert "stage reused" not in second
    # The local target is explained, and the cards have real titles.
    assert "is a link to the version it holds" in second
    assert (out / "dataset" / "README.md").read_text().count("# hubpress demo: face edits") == 1
    assert "\n# lora-repo\n" in (out / "lora-repo" / "README.md").read_text()
    assert survivors(marker) == []
