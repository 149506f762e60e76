"""Test beds: a Hub-protocol server, moto's S3 server and a Prefect test harness, all on 127.0.0.1.

Nothing here patches a client: huggingface_hub, datasets and boto3 talk HTTP to real servers.
huggingface_hub reads HF_ENDPOINT when it is imported, so the port is chosen and the variables
are set here, before any test module imports it.

Two lanes. By default the suite takes the Xet path, as uploads to the Hub do: the test Hub serves
Xet tokens and the client uploads through hf_xet. `HUBPRESS_TEST_HUB=lfs pytest -m lfs` runs the
tests marked `lfs` (a chosen end-to-end set) and `lfs_only` (the LFS transfer path itself) against
a test Hub started with --no-xet and a client with HF_HUB_DISABLE_XET=1, as older and self-hosted
Hubs are used. `make test` runs both.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_SESSION_TMP = Path(tempfile.mkdtemp(prefix="hubpress-tests-"))
# The test Hub's repos, caches and Prefect's database of this process (up to ~160 MB): removed when
# the process ends (after the session's servers have stopped), so `make test` leaves nothing behind
# in TMPDIR; HUBPRESS_KEEP_TEST_TMP=1 keeps it for a look after a failure.
if not os.environ.get("HUBPRESS_KEEP_TEST_TMP"):
    atexit.register(shutil.rmtree, _SESSION_TMP, ignore_errors=True)
HUB_PORT = _free_port()
HUB_URL = f"http://127.0.0.1:{HUB_PORT}"
WRITE_TOKEN = "hf_testwrite_9f2c1e7b5a"
READ_TOKEN = "hf_testread_3d8a6c2f0e"
OTHER_WRITE_TOKEN = "hf_testother_7b1d4e9a2c"
ORG = "acme-org"
HUB_PATH = os.environ.get("HUBPRESS_TEST_HUB", "xet")
if HUB_PATH not in ("xet", "lfs"):
    raise pytest.UsageError(f"HUBPRESS_TEST_HUB must be xet or lfs, not {HUB_PATH!r}")
XET = HUB_PATH == "xet"
requires_xet = pytest.mark.skipif(not XET, reason="the Xet path: runs in the default lane")

for _var in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_HUB_TOKEN",
    "HUBPRESS_TOKEN",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "HF_HUB_DISABLE_XET",
):
    os.environ.pop(_var, None)
if not XET:
    os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.update(
    {
        "HF_ENDPOINT": HUB_URL,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HOME": str(_SESSION_TMP / "hf-home"),
        "HF_DATASETS_CACHE": str(_SESSION_TMP / "hf-datasets"),
        "HUBPRESS_CACHE_DIR": str(_SESSION_TMP / "hubpress-cache"),
        "HUBPRESS_STAGING": str(_SESSION_TMP / "staging"),
        "PREFECT_HOME": str(_SESSION_TMP / "prefect-home"),
        # hubpress's state and local server: never the user's own (~/.local/state/hubpress), and no
        # command starts a lasting server by itself (the tests that want one say so, on a free port).
        "HUBPRESS_HOME": str(_SESSION_TMP / "hubpress-home"),
        "HUBPRESS_PREFECT_DIR": str(_SESSION_TMP / "hubpress-prefect"),
        "HUBPRESS_PREFECT_SERVER": "temporary",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_SESSION_TMP / "prefect-results"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_TO_API_ENABLED": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
os.environ.pop("PREFECT_API_URL", None)


def sent_phrase(result: dict) -> str:
    """The bytes a publish's summary names, by lane: on Xet the files' bytes and what crossed the
    wire after deduplication, on LFS the files' bytes."""
    if XET:
        assert result["transfer"] == "xet" and result["sent_bytes"] > 0
        return f"{result['uploaded_bytes']:,} bytes ({result['sent_bytes']:,} sent after Xet deduplication)"
    return f"{result['uploaded_bytes']:,} bytes sent"


def pytest_collection_modifyitems(config, items):
    """`lfs_only` tests belong to the LFS lane (and carry its `lfs` marker); the Xet lane skips them."""
    skip = pytest.mark.skip(reason="exercises the LFS transfer path: runs in the LFS lane (make test)")
    for item in items:
        if item.get_closest_marker("lfs_only") is not None:
            item.add_marker(pytest.mark.lfs)
            if XET:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def hub_server():
    """The project's Hub-protocol server on HUB_URL, with a write, a read and a second write token."""
    from tests.hubserver import HubServer

    server = HubServer(
        data_dir=_SESSION_TMP / "hub-data",
        port=HUB_PORT,
        tokens={
            WRITE_TOKEN: ("alice", "write"),
            READ_TOKEN: ("alice", "read"),
            OTHER_WRITE_TOKEN: ("bob", "write"),
        },
        orgs={"alice": {ORG}},  # alice writes to acme-org's repos too; bob does not
        xet=XET,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub(hub_server):
    """The shared server with accounting reset and no faults armed, for one test."""
    hub_server.reset_stats()
    hub_server.clear_faults()
    yield hub_server
    hub_server.clear_faults()


@pytest.fixture
def hub_proxy(hub):
    """tests/hubproxy.py in front of the test Hub: answers lost after the Hub acted, bodies a client
    cannot use, rate limits with any header. Point HUBPRESS_HUB_ENDPOINT at `hub_proxy.url`."""
    from tests.hubproxy import HubProxy

    proxy = HubProxy(hub.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def write_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    return WRITE_TOKEN


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 in server mode on 127.0.0.1: real S3 over HTTP."""
    import logging

    from moto.server import ThreadedMotoServer

    # moto serves through werkzeug in this process, and werkzeug logs every 4xx it answers at INFO
    # (verbose=False does not stop it): once Prefect's console handler is on the root logger, those
    # access lines land on the stderr a CLI test reads as hubpress's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    yield endpoint
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """Points hubpress's settings at moto and returns (endpoint, fresh bucket name)."""
    import uuid

    import boto3

    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", s3_server)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return s3_server, bucket


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness per pytest run (it costs ~10 s), heartbeats off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _handlers_restored_around(signals):
    """Python's own Ctrl-C handler in place of an ignored one for the enclosed code, and the
    handlers of `signals` put back afterwards."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in signals}
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # see _signal_handlers_restored
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for sig, handler in saved.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """The Ctrl-C and SIGTERM handlers one test leaves are not the next test's: an ignored Ctrl-C
    left in this process is inherited by every child process a later test starts (Python keeps an
    ignored SIGINT ignored), so a later Ctrl-C trial's `hubpress server start` ran to exit 0. A
    session fixture, a library, or the shell that started pytest in the background (a
    non-interactive shell starts its background jobs with Ctrl-C ignored) leaves it so."""
    import signal

    yield from _handlers_restored_around((signal.SIGINT, signal.SIGTERM))


@pytest.fixture(scope="module", autouse=True)
def _ctrl_c_heard_by_module_fixtures():
    """The same for a module's own fixtures, which are set up before any test's: test_prefect_e2e's
    `hubpress serve`, started by pytest running in the background, ignored the Ctrl-C that stops it
    and was killed only after 30 s."""
    import signal

    yield from _handlers_restored_around((signal.SIGINT,))


@pytest.fixture(autouse=True)
def _environment_restored():
    """What one test (or an in-process CLI run: `--debug` sets HUBPRESS_DEBUG) writes into
    os.environ does not reach the next test or the subprocesses it starts."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


def harness_api() -> dict[str, str]:
    """PREFECT_API_URL of the test harness's server, for a CLI run in a child process: without it
    the child starts a temporary Prefect server of its own (several seconds each), which only the
    tests about that path need."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return {"PREFECT_API_URL": url} if url else {}


def run_cli(*args: str) -> tuple[int, str, str]:
    """hubpress's real entry point (errors as one line, exit codes), in this process."""
    import contextlib
    import io

    from hubpress.commands.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def lora_on_the_hub(hub, folder: Path, prefix: str, *, seed: int, private: bool = False) -> tuple[str, Path]:
    """(repo id, weights): a model repo of alice's on the test Hub holding LoRA weights, created
    with huggingface_hub directly (no publish, no Prefect)."""
    import uuid

    from huggingface_hub import HfApi

    from hubpress.testdata.synth_lora import write_lora

    repo = f"alice/{prefix}-{uuid.uuid4().hex[:8]}"
    weights = write_lora(folder / "pytorch_lora_weights.safetensors", seed=seed)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo, private=private)
    api.upload_file(path_or_fileobj=str(weights), path_in_repo=weights.name, repo_id=repo)
    return repo, weights


@pytest.fixture
def hostile_proxy(hub, monkeypatch):
    """tests/hostileproxy.py in front of the test Hub, with HF_ENDPOINT pointing at it and
    hubpress's deadlines short (a request must be answered within 3 s): faults are armed per test."""
    from tests.hostileproxy import HostileProxy

    proxy = HostileProxy(hub.url, interval=0.5).start()
    monkeypatch.setenv("HF_ENDPOINT", proxy.url)
    monkeypatch.setenv("HUBPRESS_REQUEST_DEADLINE", "3")
    monkeypatch.setenv("HUBPRESS_READ_TIMEOUT", "30")
    yield proxy
    proxy.stop()
