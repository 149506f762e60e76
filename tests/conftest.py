"""Test beds: a Hub-protocol server, moto's S3 server and a Prefect test harness, all on 127.0.0.1.

Nothing here patches a client: huggingface_hub, datasets and boto3 talk HTTP to real servers.
huggingface_hub reads HF_ENDPOINT when it is imported, so the port is chosen and the variables
are set here, before any test module imports it.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_SESSION_TMP = Path(tempfile.mkdtemp(prefix="hubpress-tests-"))
HUB_PORT = _free_port()
HUB_URL = f"http://127.0.0.1:{HUB_PORT}"
WRITE_TOKEN = "hf_testwrite_9f2c1e7b5a"
READ_TOKEN = "hf_testread_3d8a6c2f0e"
OTHER_WRITE_TOKEN = "hf_testother_7b1d4e9a2c"
ORG = "acme-org"

for _var in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_HUB_TOKEN",
    "HUBPRESS_TOKEN",
    "HF_HUB_ENABLE_HF_TRANSFER",
):
    os.environ.pop(_var, None)
os.environ.update(
    {
        "HF_ENDPOINT": HUB_URL,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HOME": str(_SESSION_TMP / "hf-home"),
        "HF_DATASETS_CACHE": str(_SESSION_TMP / "hf-datasets"),
        "HUBPRESS_CACHE_DIR": str(_SESSION_TMP / "hubpress-cache"),
        "HUBPRESS_STAGING": str(_SESSION_TMP / "staging"),
        "PREFECT_HOME": str(_SESSION_TMP / "prefect-home"),
        # The local server's state: never the user's own (~/.local/state/hubpress/prefect).
        "HUBPRESS_PREFECT_DIR": str(_SESSION_TMP / "hubpress-prefect"),
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
    from moto.server import ThreadedMotoServer

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
