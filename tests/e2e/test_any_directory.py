"""hubpress imports the same code whatever the working directory holds.

The directory every command here runs from holds what a user's home or project really holds: the
checkout itself seen from its parent (`hubpress/`, a folder without `__init__.py`, which imported as
a namespace package before), and a `flows/`, `tasks.py` and `deployments/` of the user's own that
fail loudly if anything imports them. The CLI (console script and `python -m`), the Python API and
a run served by `hubpress serve` started there must all work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hubpress.deployments.serve import PUBLISH_DATASET
from hubpress.testdata.synth import write_dataset
from tests.conftest import WRITE_TOKEN, _free_port, harness_api
from tests.e2e.test_prefect_e2e import _post, _ui_form_parameters, _wait_for_run

ROOT = Path(__file__).resolve().parents[2]
HUBPRESS = str(Path(sys.executable).parent / "hubpress")
SHADOWS = {
    "flows/__init__.py": "flows",
    "tasks.py": "tasks",
    "deployments/__init__.py": "deployments",
}


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Path:
    """A working directory holding the checkout (as `hubpress/`) and the user's own flows, tasks,
    deployments; plus a small dataset."""
    home = tmp_path_factory.mktemp("crowded-home")
    (home / "hubpress").symlink_to(ROOT, target_is_directory=True)
    for path, name in SHADOWS.items():
        (home / path).parent.mkdir(parents=True, exist_ok=True)
        (home / path).write_text(f"raise ImportError(\"the user's own {name}, not hubpress's\")\n")
    write_dataset(home / "face_seg", samples=3, test_fraction=0.0, image_size=16, seed=11)
    return home


@pytest.fixture(scope="module")
def env(crowded, hub_server) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_API_", "PREFECT_LOGGING_")) and k != "PREFECT_LOGGING_LEVEL"
    }
    state = crowded.parent / f"{crowded.name}-state"
    env.update(
        {
            "XDG_STATE_HOME": str(state / "xdg"),
            "HUBPRESS_PREFECT_DIR": str(state / "prefect"),
            "PREFECT_HOME": str(state / "client-home"),
            "HUBPRESS_STAGING": str(state / "staging"),
            "HUBPRESS_CACHE_DIR": str(state / "cache"),
            "HF_ENDPOINT": hub_server.url,
            "HF_TOKEN": WRITE_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("entry", "own_prefect_server"),
    [([HUBPRESS], False), ([sys.executable, "-m", "hubpress.commands.cli"], True)],
    ids=["console-script", "python-m"],
)
def test_the_cli_works_from_a_directory_holding_namesakes(crowded, env, entry, own_prefect_server, request):
    """`python -m` puts the working directory first on sys.path, for the command and for the
    temporary Prefect server it starts (`python -m uvicorn`, there too). The console script does
    not: its run records on the harness's server, as a temporary server of its own would only
    prove again what the `python -m` run's proves (8-16 s)."""
    if not own_prefect_server:
        request.getfixturevalue("prefect_harness")
        env = {**env, **harness_api()}
    target = f"./out/cli-{len(entry)}"
    done = _run([*entry, "publish-dataset", "face_seg", target, "--json"], env, crowded)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["target"].endswith(target.removeprefix("."))
    assert (crowded / target / "README.md").exists()
    assert "ImportError" not in done.stderr and "Traceback" not in done.stderr


def test_the_python_api_works_from_a_directory_holding_namesakes(crowded, env):
    """`python -c` puts the working directory first on sys.path, as a notebook started there does."""
    code = (
        "import hubpress\n"
        "from hubpress.api import upload_editing_dataset\n"
        "result = upload_editing_dataset('face_seg', './out/api')\n"
        "print(hubpress.__version__)\n"
        "print(hubpress.__file__)\n"  # a line of its own: the checkout's path may hold spaces
    )
    done = _run([sys.executable, "-c", code], env, crowded)
    assert done.returncode == 0, done.stderr[-3000:]
    version, where = done.stdout.splitlines()[-2:]
    assert version == __import__("hubpress").__version__
    assert Path(where).resolve() == ROOT / "hubpress" / "__init__.py"
    assert (crowded / "out" / "api" / "README.md").exists()


def test_a_run_served_from_a_directory_holding_namesakes_completes(crowded, env):
    server = _run([HUBPRESS, "server", "start", "--port", str(_free_port()), "--json"], env, crowded)
    assert server.returncode == 0, server.stderr
    api_url = json.loads(server.stdout)["api_url"]
    log_path = crowded.parent / f"{crowded.name}-serve.log"
    serve_env = {**env, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [HUBPRESS, "serve"], env=serve_env, cwd=crowded, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        with httpx.Client(base_url=api_url, timeout=30) as api:
            deadline = time.monotonic() + 180
            while (found := api.get(f"/deployments/name/{PUBLISH_DATASET}")).status_code != 200:
                assert proc.poll() is None, f"hubpress serve exited:\n{log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.5)
            deployment = found.json()
            assert deployment["entrypoint"] == "hubpress.flows.publish_dataset.publish_dataset"
            target = crowded / "out" / "served"
            response = _post(
                api,
                f"/deployments/{deployment['id']}/create_flow_run",
                {"parameters": _ui_form_parameters(source=str(crowded / "face_seg"), target=str(target))},
            )
            assert response.status_code == 201, response.text
            run = _wait_for_run(api, response.json()["id"], log_path)
        assert run["state_type"] == "COMPLETED", log_path.read_text()[-3000:]
        assert (target / "README.md").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _run([HUBPRESS, "server", "stop"], env, crowded, timeout=60)
