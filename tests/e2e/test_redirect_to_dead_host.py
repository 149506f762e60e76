"""A resolve answer redirecting to a host nothing listens on (the Hub's CDN or storage, unreachable
from here): the one line names that host, without its signed query string, not the Hub; and
huggingface_hub's per-retry "Error while downloading ... Trying to resume" warnings stay off the
terminal. Through the CLI: download-lora, and a refresh reading its target's manifest. A redirect
to another scheme or to a URL with user information is one line too, and sends no credentials."""

from __future__ import annotations

import json
import uuid

import pytest
from PIL import Image

from tests.conftest import WRITE_TOKEN, lora_on_the_hub, run_cli
from tests.e2e.test_hostile_network import one_line_failure
from tests.hostileproxy import DEAD_HOST, SIGNATURE, USERINFO

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("prefect_harness")]


def assert_names_the_dead_host(line: str, err: str, hub_url: str) -> None:
    assert f"redirected the download to {DEAD_HOST}/x, which refused the connection" in line, line
    assert f"the Hub at {hub_url} redirected" in line and "check that this machine can reach it" in line
    assert SIGNATURE not in err and "X-Amz-Signature" not in err
    assert "Trying to resume" not in err and "Error while downloading" not in err, err


def download_redirected(kind: str, hub, hostile_proxy, tmp_cwd, monkeypatch) -> tuple[str, str]:
    """(the one error line, stderr) of download-lora whose resolve answers are `kind`; nothing
    printed on stdout, nothing half-kept in the cache."""
    repo, weights = lora_on_the_hub(hub, tmp_cwd, "odd-redirect", seed=3)
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^GET /{repo}/resolve/", kind, count=50)
    code, out, err = run_cli("download-lora", repo)
    line = one_line_failure(code, err, kind)
    assert out == "" and hostile_proxy.fired
    assert not [p for p in (tmp_cwd / "hf-home").rglob(weights.name) if p.is_file()]  # nothing half-kept
    return line, err


@pytest.mark.parametrize("kind", ["redirect_dead", "redirect_dead_schemeless"])
def test_download_lora_redirected_to_a_dead_host_names_it(
    kind, hub, hostile_proxy, write_token, tmp_cwd, monkeypatch
):
    line, err = download_redirected(kind, hub, hostile_proxy, tmp_cwd, monkeypatch)
    assert_names_the_dead_host(line, err, hostile_proxy.url)


@pytest.mark.parametrize("kind", ["redirect_file", "redirect_userinfo"])
def test_a_download_redirected_to_another_scheme_or_userinfo_is_one_line(
    kind, hub, hostile_proxy, write_token, tmp_cwd, monkeypatch
):
    """`file:///etc/passwd`, or `http://user:pass@other/...`: no local file read, neither the token
    nor any Authorization sent to the other host, no user information repeated. (Both held when
    tried: httpx refuses the scheme and drops credentials across origins; kept so they keep holding.)"""
    line, err = download_redirected(kind, hub, hostile_proxy, tmp_cwd, monkeypatch)
    assert "root:" not in err and USERINFO.split(":")[1] not in err, line
    for headers in hostile_proxy.other_saw:
        assert "authorization" not in headers and WRITE_TOKEN not in str(headers)


def test_a_refresh_reading_its_manifest_through_a_dead_redirect_names_the_host(
    hostile_proxy, write_token, tmp_cwd, monkeypatch
):
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_cwd / "staging"))
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    studio = tmp_cwd / "studio"
    studio.mkdir()
    Image.new("RGB", (16, 16), (200, 0, 0)).save(studio / "img0.png")
    (studio / "img0.txt").write_text("a red square")
    config = json.dumps([{"id": "studio", "type": "local", "instance_data_dir": str(studio)}])
    repo = f"alice/dead-redirect-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("refresh", config, repo, "--json")
    assert code == 0, err
    hostile_proxy.arm(rf"^GET /datasets/{repo}/resolve/", "redirect_dead", count=50)
    code, out, err = run_cli("refresh", config, repo)
    assert_names_the_dead_host(one_line_failure(code, err, "redirect_dead"), err, hostile_proxy.url)
    assert hostile_proxy.fired
