"""Credentials in the endpoint URL (`HF_ENDPOINT=http://user:password@host`) are refused in one
line that never shows them, by every command that talks to the Hub, before any request: a valid
HF_TOKEN is never replaced by Basic auth and reported as "invalid or expired". Any URL a hubpress
error names is shown without its user information.

Each command runs as its own process (huggingface_hub reads HF_ENDPOINT when imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from hubpress.errors import ConfigError, HubpressError, hide_userinfo
from hubpress.testdata.synth import write_dataset
from hubpress.testdata.synth_lora import write_lora
from tests.conftest import HUB_URL, WRITE_TOKEN, harness_api

PASSWORD = "pw-canary-5e1d0c9a"


def _with_userinfo(url: str, userinfo: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{userinfo}@{parts.netloc}{parts.path}"


SPELLINGS = [
    f"alice:{PASSWORD}",
    f"{PASSWORD}",  # a user name alone (a token pasted there)
    f":{PASSWORD}",
    f"alice%40corp:{PASSWORD}",
]


def _cli(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_TOKEN": WRITE_TOKEN, **env},
        timeout=300,
    )


@pytest.mark.parametrize(
    ("setting", "userinfo"),
    [("HF_ENDPOINT", u) for u in SPELLINGS] + [("HUBPRESS_HUB_ENDPOINT", SPELLINGS[0])],
)
def test_credentials_in_the_endpoint_are_refused_in_one_line_without_showing_them(
    hub, tmp_path, userinfo, setting
):
    src = tmp_path / "src"
    write_dataset(src, samples=2, image_size=16, seed=1)
    weights = tmp_path / "pytorch_lora_weights.safetensors"
    write_lora(weights)
    config = tmp_path / "multidatabackend.json"
    config.write_text(json.dumps([{"id": "u", "type": "huggingface", "dataset_name": "alice/x"}]))
    endpoint = _with_userinfo(HUB_URL, userinfo)
    commands = [
        ["publish-dataset", str(src), "alice/creds-ds", "--json"],
        ["publish-lora", str(weights), "alice/creds-lora"],
        ["download-lora", "alice/creds-lora", "--json"],
        ["refresh", str(config), "alice/creds-refresh"],
    ]
    for args in commands:
        done = _cli(args, {setting: endpoint}, tmp_path)
        output = done.stdout + done.stderr
        assert done.returncode == 1, (args, output)
        assert PASSWORD not in output, (args, output)
        assert "invalid or expired" not in output and "Traceback" not in output
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "refuses credentials in the endpoint" in errors[0], (args, output)
        assert setting in errors[0]
        if "--json" in args:
            assert PASSWORD not in json.loads(done.stdout.strip().splitlines()[-1])["error"]
    # nothing was sent with them (the `hub` fixture reset the accounting)
    assert sum(hub.stats.requests.values()) == 0, hub.stats.requests


@pytest.mark.usefixtures("prefect_harness")
def test_a_local_target_needs_no_endpoint(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_dataset(src, samples=2, image_size=16, seed=2)
    # On the harness's Prefect server: a temporary server of its own (8-16 s) is not the point.
    done = _cli(
        ["publish-dataset", str(src), str(out)],
        {"HF_ENDPOINT": _with_userinfo(HUB_URL, "a:b"), **harness_api()},
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{PASSWORD}@127.0.0.1:1/x",
        f"https://{PASSWORD}@hub.example/api",
        f"s3://AKIA:{PASSWORD}@bucket/key",
        f"HTTP://u:{PASSWORD}@h",
    ],
)
def test_no_hubpress_error_shows_the_userinfo_of_a_url(url):
    for error in (HubpressError(f"failed at {url}: retry"), ConfigError(f"{url}")):
        assert PASSWORD not in str(error) and "***@" in str(error)
    assert PASSWORD not in hide_userinfo(f"x {url} y")
    assert (
        hide_userinfo("hf://datasets/org/name@0123abc/train/0.png")
        == "hf://datasets/org/name@0123abc/train/0.png"
    )
