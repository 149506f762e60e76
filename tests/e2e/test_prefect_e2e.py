"""End to end on a real Prefect server: `hubpress server start`, `hubpress serve`, then runs started
the way the UI starts them, by a trainer's event, refused by the parameter schema, and looked at
in the UI with headless Chromium.

The server and the serve process are subprocesses with their own environment (PREFECT_HOME,
PREFECT_API_URL), so the session's prefect_harness used by other modules is left alone. The test
talks to the server over its REST API, as the UI does.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import typing
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from hubpress.deployments.serve import PUBLISH_DATASET, RELEASE_TRAINING_RUN, SCHEDULED_PUBLISH
from hubpress.flows.params import PublishDatasetParams
from hubpress.orchestration.artifacts import repo_key
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, _free_port

CHROMIUM = "/usr/bin/chromium"
RUN_TIMEOUT_S = 240
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _hubpress(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prefect-e2e")


@pytest.fixture(scope="module")
def base_env(e2e_dir) -> dict[str, str]:
    """The environment a user's shell would have: no PREFECT_API_URL, a token, hubpress dirs in tmp."""
    env = {
        k: v
        for k, v in os.environ.items()
        # Not what a user's shell holds: importing hubpress.commands.cli in this process (other
        # test modules do) quiets Prefect's console through the environment.
        if not k.startswith(("PREFECT_API_", "PREFECT_LOGGING_HANDLERS_CONSOLE"))
        and k not in ("HUBPRESS_HOME", "HUBPRESS_PREFECT_DIR", "PREFECT_LOGGING_LEVEL")
    }
    env.update(
        {
            # The local server's state goes to its default, user-level place ($XDG_STATE_HOME).
            "XDG_STATE_HOME": str(e2e_dir / "user-state"),
            "PREFECT_HOME": str(e2e_dir / "client-home"),
            "HF_TOKEN": WRITE_TOKEN,
            "HUBPRESS_STAGING": str(e2e_dir / "staging"),
            "HUBPRESS_CACHE_DIR": str(e2e_dir / "cache"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def prefect_server(base_env, e2e_dir):
    """`hubpress server start` on a free port; stopped with `hubpress server stop`."""
    started = _hubpress(["server", "start", "--port", str(_free_port()), "--json"], base_env, e2e_dir)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    yield info["api_url"]
    stopped = _hubpress(["server", "stop"], base_env, e2e_dir, timeout=60)
    assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="module")
def api(prefect_server):
    with httpx.Client(base_url=prefect_server, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def served(prefect_server, hub_server, base_env, e2e_dir, api):
    """`hubpress serve` in a subprocess, pointed at the server and the Hub-protocol server."""
    env = {**base_env, "PREFECT_API_URL": prefect_server, "HF_ENDPOINT": hub_server.url}
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "2"  # runs start within 2 s of being created
    log_path = e2e_dir / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubpress.commands.cli", "serve"],
            env=env,
            cwd=e2e_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deployments = {}
        deadline = time.monotonic() + 120
        while len(deployments) < 3:
            assert proc.poll() is None, f"hubpress serve exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"deployments never appeared:\n{log_path.read_text()}"
            time.sleep(0.5)
            for full in (PUBLISH_DATASET, RELEASE_TRAINING_RUN, "publish-lora/manual"):
                response = api.get(f"/deployments/name/{full}")
                if response.status_code == 200:
                    deployments[full] = response.json()
        yield deployments
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_run(api: httpx.Client, run_id: str, log: Path | None = None) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        response = api.get(f"/flow_runs/{run_id}")
        if response.status_code == 503:  # SQLite busy: ask again
            time.sleep(1)
            continue
        run = response.raise_for_status().json()
        if run["state_type"] in TERMINAL:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['state_type']}:\n{_tail(log)}"
        time.sleep(0.5)


def _post(api: httpx.Client, url: str, body: dict) -> httpx.Response:
    """POST as the UI's client does: SQLite under concurrent writers answers 503 now and then, and
    Prefect's clients retry it."""
    for _ in range(10):
        response = api.post(url, json=body)
        if response.status_code not in (429, 503):
            return response
        time.sleep(1)
    return response


def _tail(log: Path | None) -> str:
    return log.read_text()[-4000:] if log and log.exists() else ""


def _ui_form_parameters(**values) -> dict:
    """What the UI's form posts: every field of the params model, defaults included."""
    return {"params": PublishDatasetParams(**values).model_dump(mode="json")}


@pytest.fixture(scope="module")
def completed_publish(served, api, hub_server, e2e_dir):
    """One publish-dataset run created through the REST API the UI uses, waited for."""
    src = e2e_dir / "dataset"
    write_dataset(src, samples=6, test_fraction=0.34, image_size=16, seed=7)
    repo = f"alice/e2e-{uuid.uuid4().hex[:8]}"
    deployment = served[PUBLISH_DATASET]
    response = _post(
        api,
        f"/deployments/{deployment['id']}/create_flow_run",
        {
            "parameters": _ui_form_parameters(source=str(src), target=repo, tag="v1"),
            "state": {"type": "SCHEDULED", "message": "Run from the Prefect UI"},
        },
    )
    assert response.status_code == 201, response.text
    run = _wait_for_run(api, response.json()["id"], e2e_dir / "serve.log")
    return run, repo


def test_publish_started_from_the_ui_completes_with_plan_and_link_artifacts(
    completed_publish, api, hub_server
):
    run, repo = completed_publish
    assert run["state_type"] == "COMPLETED", run["state"]
    artifacts = _post(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    by_key = {a["key"]: a for a in artifacts if a["key"]}
    slug = repo_key("", repo).lstrip("-")  # each repo has its own keys: the Artifacts page's "latest"
    by_key |= {key.removesuffix(f"-{slug}"): a for key, a in by_key.items()}
    plan = by_key["publish-plan"]
    assert plan["type"] == "table"
    rows = json.loads(plan["data"]) if isinstance(plan["data"], str) else plan["data"]
    planned = {row["path"] for row in rows} if isinstance(rows, list) else set(rows["path"])
    assert "README.md" in planned and any(p.endswith(".parquet") for p in planned)

    head = HfApi(token=WRITE_TOKEN).repo_info(repo, repo_type="dataset").sha
    link = by_key["published-commit"]
    # Prefect stores a link artifact as markdown: [text](url).
    assert head in link["data"] and f"/commit/{head}" in link["data"]
    refs = HfApi(token=WRITE_TOKEN).list_repo_refs(repo, repo_type="dataset")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", head)]
    assert by_key["publish-summary"]["type"] == "markdown"


def test_overlapping_scheduled_runs_never_both_publish(served, api, hub_server, e2e_dir):
    """A slow night runs into the next one: the deployment's concurrency limit (1, CANCEL_NEW)
    cancels the second run; only the first commits."""
    deadline = time.monotonic() + 60
    while (response := api.get(f"/deployments/name/{SCHEDULED_PUBLISH}")).status_code != 200:
        assert time.monotonic() < deadline, f"{SCHEDULED_PUBLISH} was not served"
        time.sleep(0.5)
    deployment = response.json()
    assert deployment["global_concurrency_limit"]["limit"] == 1
    assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert [s["active"] for s in deployment["schedules"]] == [False]

    src = e2e_dir / "nightly-dataset"
    write_dataset(src, samples=4, test_fraction=0.0, image_size=16, seed=11)
    repo = f"alice/e2e-nightly-{uuid.uuid4().hex[:8]}"
    parameters = _ui_form_parameters(source=str(src), target=repo)
    # The first night is slow: its commit is held for a while by the Hub (waited out: a commit's
    # answer may take up to HUBPRESS_READ_TIMEOUT, so 10 s keeps the run busy without costing CI 30 s).
    hub_server.arm_fault("commit", "stall", count=1, stall_seconds=10)
    try:
        first = _post(api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})
        assert first.status_code == 201, first.text
        first_id = first.json()["id"]
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while api.get(f"/flow_runs/{first_id}").json()["state_type"] != "RUNNING":
            assert time.monotonic() < deadline, (
                f"the first run never started:\n{_tail(e2e_dir / 'serve.log')}"
            )
            time.sleep(0.5)
        # The next night comes due while the first still runs.
        second = _post(api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})
        assert second.status_code == 201, second.text
        second_run = _wait_for_run(api, second.json()["id"], e2e_dir / "serve.log")
        assert api.get(f"/flow_runs/{first_id}").json()["state_type"] == "RUNNING"
    finally:
        hub_server.clear_faults()
    first_run = _wait_for_run(api, first_id, e2e_dir / "serve.log")
    assert first_run["state_type"] == "COMPLETED", first_run["state"]
    assert second_run["state_type"] == "CANCELLED", second_run["state"]
    commits = [c for c in hub_server.commit_history("dataset", repo) if c["parents"]]
    assert len(commits) == 1  # one publish, besides the repo's initial commit


def test_training_finished_event_releases_a_tagged_commit(served, api, prefect_server, base_env, e2e_dir):
    output = e2e_dir / "training-output"
    for step in (100, 200):
        write_lora(output / f"checkpoint-{step}" / "pytorch_lora_weights.safetensors", seed=step)
    (output / "config.yaml").write_text("learning_rate: 0.0001\n")
    repo = f"alice/e2e-lora-{uuid.uuid4().hex[:8]}"

    # The trainer's hook, as a trainer would call it.
    env = {**base_env, "PREFECT_API_URL": prefect_server}
    emitted = _hubpress(
        [
            "training-finished",
            str(output),
            "--repo",
            repo,
            "--tag",
            "rel-1",
            "--base-model",
            "Qwen/Qwen-Image-Edit",
        ],
        env,
        e2e_dir,
        timeout=60,
    )
    assert emitted.returncode == 0 and "warning" not in emitted.stderr, emitted.stderr

    deployment = served[RELEASE_TRAINING_RUN]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        runs = _post(api, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}}).json()
        if runs:
            break
        assert time.monotonic() < deadline, "the event created no release-training-run run"
        time.sleep(0.5)
    assert len(runs) == 1
    params = runs[0]["parameters"]["params"]
    assert params["output_uri"] == str(output) and params["repo_id"] == repo
    assert params["tag"] == "rel-1" and params["select"] == "latest"
    assert params["base_model"] == "Qwen/Qwen-Image-Edit"

    run = _wait_for_run(api, runs[0]["id"], e2e_dir / "serve.log")
    assert run["state_type"] == "COMPLETED", run["state"]
    hf = HfApi(token=WRITE_TOKEN)
    head = hf.repo_info(repo).sha
    assert [(t.name, t.target_commit) for t in hf.list_repo_refs(repo).tags] == [("rel-1", head)]
    release = json.loads(Path(hf.hf_hub_download(repo, "release.json", revision=head)).read_text())
    assert release["checkpoint"] == "checkpoint-200"


def test_bad_parameter_values_are_refused_by_the_server(served, api):
    deployment = served[PUBLISH_DATASET]
    good = _ui_form_parameters(source="/data/x", target="alice/x")
    for field, value in (("layout", "zip"), ("max_pixels", -1)):
        bad = {"params": {**good["params"], field: value}}
        response = _post(api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": bad})
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert "Validation failed" in detail and field in detail, detail
    missing = {"params": {k: v for k, v in good["params"].items() if k != "source"}}
    response = _post(api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": missing})
    assert response.status_code == 409 and "source" in response.json()["detail"]


def test_cli_commands_record_their_runs_on_the_local_server(
    prefect_server, api, base_env, e2e_dir, hub_server
):
    """No PREFECT_API_URL: the command finds the server `hubpress server start` recorded."""
    src = e2e_dir / "cli-dataset"
    write_dataset(src, samples=3, test_fraction=0.0, image_size=16, seed=8)
    out = e2e_dir / "cli-out"
    result = _hubpress(["publish-dataset", str(src), f"./{out.name}"], base_env, e2e_dir)
    assert result.returncode == 0, result.stderr
    assert f"runs are recorded at {prefect_server.removesuffix('/api')}" in result.stderr
    runs = _post(
        api,
        "/flow_runs/filter",
        {
            "flows": {"name": {"any_": ["publish-dataset"]}},
            "flow_runs": {"deployment_id": {"is_null_": True}},
        },
    ).json()
    assert any(r["state_type"] == "COMPLETED" for r in runs)
    assert (out / "README.md").exists()


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,2000",
    # The UI is a single-page app: give its scripts time to fetch the run before the dump.
    "--virtual-time-budget=20000",
]


def _page_text(url: str, profile: Path, must: list[str]) -> str:
    """The visible text of a UI page in headless Chromium, asked again (up to 3 times) until it
    holds every string of `must`: a busy machine may not finish the page's first fetches in time."""
    text = ""
    for attempt in range(3):
        dom = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}-{attempt}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        text = _visible_text(dom)
        if all(m in text for m in must):
            break
    return text


def test_prefect_ui_shows_the_completed_run(completed_publish, prefect_server, api, e2e_dir):
    """The flow-run page tells the story of the publish (intake, plan, the commit's link), and the
    artifacts it names show the intake report, the plan and the commit link themselves."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium)")
    run, repo = completed_publish
    ui = prefect_server.removesuffix("/api")
    head = HfApi(token=WRITE_TOKEN).repo_info(repo, repo_type="dataset").sha
    url = f"{ui}/runs/flow-run/{run['id']}"
    must = [run["name"], "Completed", "Intake of", "Plan:", f"/commit/{head}", "tag v1"]
    text = _page_text(url, e2e_dir / "chromium-run", must)
    for needle in must:
        assert needle in text, f"{needle!r} not on the flow-run page: {text[:3000]}"

    artifacts = _post(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    by_key = {a["key"]: a for a in artifacts if a["key"]}
    slug = repo_key("", repo).lstrip("-")
    by_key |= {key.removesuffix(f"-{slug}"): a for key, a in by_key.items()}
    for key, needles in (
        ("intake-report", ["Intake of", "kept", "skipped"]),
        ("publish-plan", ["README.md", ".parquet", "added"]),
        ("published-commit", [f"/commit/{head}"]),
    ):
        page = _page_text(
            f"{ui}/artifacts/artifact/{by_key[key]['id']}", e2e_dir / f"chromium-{key}", needles
        )
        for needle in needles:
            assert needle in page, f"{needle!r} not on the {key} artifact page: {page[:3000]}"

    shot = e2e_dir / "flow-run.png"
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={e2e_dir / 'chromium-shot'}",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    keep = os.environ.get("HUBPRESS_E2E_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_the_deployment_form_offers_the_cli_options(served, prefect_server, e2e_dir):
    """The UI's run form for publish-dataset and `hubpress publish-dataset` come from one model:
    every CLI option is a field of the form (its title shows), with the same choices."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium)")

    from typer.main import get_command

    from hubpress.commands.cli import app

    command = get_command(app).commands["publish-dataset"]
    own = {"task_runner", "dask_address", "as_json"}
    cli_fields = {p.name: p for p in command.params if p.name not in own}
    fields = PublishDatasetParams.model_fields
    assert set(cli_fields) == set(fields)

    deployment = served[PUBLISH_DATASET]
    titles = [fields[name].title for name in cli_fields]
    text = _page_text(
        f"{prefect_server.removesuffix('/api')}/deployments/deployment/{deployment['id']}/run",
        e2e_dir / "chromium-form",
        titles,
    )
    for name, param in cli_fields.items():
        assert fields[name].title in text, f"the form lacks {name} ({fields[name].title!r}): {text[:3000]}"
        kind = param.type_descriptor.annotation  # what the CLI parses the option as
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            choices = [c.value for c in kind]
            assert list(typing.get_args(fields[name].annotation)) == choices
            assert " ".join(choices) in text, f"{name}: the choices {choices} are not in the form"


def _visible_text(html: str) -> str:
    import re

    html = re.sub(r"<(svg|script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_training_finished_never_fails_the_trainer(base_env, e2e_dir):
    run = e2e_dir / "runs" / "run1"
    run.mkdir(parents=True, exist_ok=True)
    unreachable = {**base_env, "PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api"}
    # A relative path, as a trainer in its own directory passes it: announced as an absolute one.
    result = _hubpress(
        ["training-finished", "run1", "--repo", "alice/x", "--timeout", "2"],
        unreachable,
        run.parent,
        timeout=60,
    )
    assert result.returncode == 0 and "warning: could not announce" in result.stderr
    assert f"hubpress release {run} --repo alice/x" in result.stderr

    no_server = {**base_env, "HUBPRESS_PREFECT_DIR": str(e2e_dir / "no-server-here")}
    result = _hubpress(["training-finished", str(run), "--repo", "alice/x"], no_server, e2e_dir, timeout=60)
    assert result.returncode == 0 and "no Prefect server configured" in result.stderr

    missing = _hubpress(["training-finished", "run2", "--repo", "alice/x"], no_server, run.parent, timeout=60)
    assert missing.returncode == 0
    assert (
        f"{run.parent / 'run2'} does not exist" in missing.stderr
        and "Nothing was announced" in missing.stderr
    )


def test_the_local_server_is_found_from_any_directory(prefect_server, base_env, e2e_dir):
    """State in a user-level directory: `server status` elsewhere sees the same server, and a
    second `server start --port N` says that one already runs on another port."""
    elsewhere = e2e_dir / "some" / "other" / "dir"
    elsewhere.mkdir(parents=True, exist_ok=True)
    status = _hubpress(["server", "status", "--json"], base_env, elsewhere, timeout=60)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) | {"pid": 0} == {
        "status": "running",
        "api_url": prefect_server,
        "ui_url": prefect_server.removesuffix("/api"),
        "pid": 0,
    }
    assert (e2e_dir / "user-state" / "hubpress" / "prefect" / "server.json").exists()
    other_port = _free_port()
    again = _hubpress(["server", "start", "--port", str(other_port)], base_env, elsewhere, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert f"--port {other_port} was not used" in again.stderr


def test_prefect_deploy_all_needs_the_checkout_and_uses_pool_names(prefect_server, api, base_env, e2e_dir):
    """`prefect deploy --all` (prefect.yaml) on a real server: refused in one line without
    HUBPRESS_CHECKOUT, and otherwise creates the "-pool" deployments next to the served ones."""
    from hubpress.deployments.serve import PUBLISH_LORA, REFRESH_DATASET, pool_name

    root = Path(__file__).resolve().parents[2]
    prefect = str(Path(sys.executable).parent / "prefect")
    env = {**base_env, "PREFECT_API_URL": prefect_server}
    env.pop("HUBPRESS_CHECKOUT", None)
    pool = subprocess.run(
        [prefect, "work-pool", "create", "hubpress-process", "--type", "process"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pool.returncode == 0 or "already exists" in pool.stdout + pool.stderr, pool.stdout + pool.stderr
    pool_names = [
        pool_name(n) for n in (PUBLISH_DATASET, PUBLISH_LORA, RELEASE_TRAINING_RUN, REFRESH_DATASET)
    ]

    refused = subprocess.run(
        [prefect, "deploy", "--all"], env=env, cwd=root, capture_output=True, text=True, timeout=300
    )
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1, out
    assert (
        [line for line in out.splitlines() if line.startswith("error:")]
        == [line for line in out.splitlines() if "HUBPRESS_CHECKOUT is not set" in line]
        != []
    )
    assert "Traceback" not in out
    assert all(api.get(f"/deployments/name/{name}").status_code == 404 for name in pool_names)

    deployed = subprocess.run(
        [prefect, "deploy", "--all"],
        env={**env, "HUBPRESS_CHECKOUT": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    for name in pool_names:
        found = api.get(f"/deployments/name/{name}")
        assert found.status_code == 200, name
        assert found.json()["work_pool_name"] == "hubpress-process"
    # The served deployment of the same flow is another deployment, with no work pool.
    served = api.get(f"/deployments/name/{PUBLISH_DATASET}")
    if served.status_code == 200:
        assert served.json()["id"] != api.get(f"/deployments/name/{pool_names[0]}").json()["id"]


def test_the_python_api_reports_to_the_local_server(prefect_server, api, base_env, e2e_dir):
    """A plain script calling hubpress.api finds the server `hubpress server start` recorded (no
    PREFECT_API_URL, another directory): no temporary server, and the run is on the local one."""
    work = e2e_dir / "api-script"
    write_dataset(work / "face_seg", samples=3, test_fraction=0.0, image_size=16, seed=9)
    (work / "script.py").write_text(
        "from hubpress.api import upload_editing_dataset\n"
        'print("commit", upload_editing_dataset("face_seg", "./out/face-seg")["commit"])\n'
    )
    done = subprocess.run(
        [sys.executable, "script.py"], env=base_env, cwd=work, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "Starting temporary server" not in said
    # As quiet as the CLI: no Prefect INFO lines ("View at ...", task states) on the console.
    assert "INFO" not in said and "View at" not in said, said[-3000:]
    commit = done.stdout.split()[-1]
    runs = _post(api, "/flow_runs/filter", {"flows": {"name": {"any_": ["publish-dataset"]}}}).json()
    assert any(r["state_type"] == "COMPLETED" for r in runs)
    assert (work / "out" / "face-seg" / "README.md").exists() and commit
