"""A download through Xet is held to the same storage gate as an upload. The test Hub serves a
Xet-backed file as the Hub does (its resolve answer names the file's Xet hash and where to ask for a
read token); a Hub whose read-token answer names a folder of this machine as its storage, or whose
resolve answer sends the token request to another host, ends `download-lora` in one line, exit 1,
with nothing written there, no token sent away and nothing half-downloaded left in the cache."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, requires_xet, run_cli
from tests.lora.test_download_checks import WEIGHTS, _one_error_line, _upload
from tests.tokenthief import TokenThief

pytestmark = requires_xet


def _lora_bytes(tmp_path: Path) -> bytes:
    """Weights of their own: hf_xet rebuilds a file whose chunks it cached from any earlier
    download without asking the Hub again."""
    path = tmp_path / WEIGHTS
    write_lora(path, seed=uuid.uuid4().int % 10_000)
    return path.read_bytes()


@pytest.fixture
def xet_reads(hub, monkeypatch):
    monkeypatch.setattr(hub.app.xet, "serve_reads", True)
    return hub.app.xet


def _left_in_cache(repo: str) -> list[Path]:
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "blobs"
    return sorted(folder.glob("*")) if folder.is_dir() else []


def test_a_xet_backed_file_downloads_through_xet(hub, write_token, tmp_path, xet_reads):
    good = _lora_bytes(tmp_path)
    repo = f"alice/xet-dl-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: good})
    hub.reset_stats()
    code, out, err = run_cli("download-lora", repo)
    assert code == 0, err
    assert Path(out.strip()).read_bytes() == good
    assert hub.stats.requests["xet_read_token"] >= 1 and hub.stats.download_bytes == 0


def test_a_read_token_naming_a_folder_of_this_machine_is_refused(
    hub, write_token, tmp_path, xet_reads, monkeypatch
):
    repo = f"alice/xet-dl-local-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: _lora_bytes(tmp_path)})
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setattr(type(xet_reads), "url", property(lambda self: f"local://{elsewhere}"))
    code, out, err = run_cli("download-lora", repo)
    assert code == 1, err
    line = _one_error_line(err)
    assert "Xet storage" in line and "HUBPRESS_XET_LOCAL_CAS" in line, line
    assert WRITE_TOKEN not in out + err
    assert not elsewhere.exists()
    assert _left_in_cache(repo) == []


@pytest.mark.parametrize("route", ["http://{thief}/api/models/x/xet-read-token/main", "//{thief}/t"])
def test_a_read_token_route_on_another_host_never_gets_the_token(
    hub, write_token, tmp_path, xet_reads, monkeypatch, route
):
    repo = f"alice/xet-dl-route-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: _lora_bytes(tmp_path)})
    with TokenThief() as thief:
        monkeypatch.setattr(xet_reads, "refresh_route", route.format(thief=thief.url.split("//", 1)[1]))
        code, out, err = run_cli("download-lora", repo)
    assert not thief.saw(WRITE_TOKEN), "the token was sent to another host"
    assert code == 1, err
    line = _one_error_line(err)
    assert "Xet" in line and WRITE_TOKEN not in out + err, line
    assert _left_in_cache(repo) == []


def _two_files_and_a_lying_resolve(hub, tmp_path, monkeypatch, announce_size: bool) -> tuple[str, bytes]:
    """(repo, the weights) of a new repo holding the weights and a larger file, whose resolve answer
    for the weights names the larger file's Xet hash (and, with `announce_size`, its size): what a
    Hub, or a proxy in its place, may answer."""
    import hashlib

    import tests.hubserver.app as hub_app

    good = _lora_bytes(tmp_path)
    larger = _lora_bytes(tmp_path) * 3
    repo = f"alice/xet-dl-lie-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: good, "other.bin": larger})
    weights_sha, other = (
        hashlib.sha256(good).hexdigest(),
        hub.app.xet.find(hashlib.sha256(larger).hexdigest()),
    )
    honest = hub_app.read_headers

    def lying(cas, base_url, token_path, sha256):
        headers = honest(cas, base_url, token_path, sha256)
        if sha256 == weights_sha:
            headers["X-Xet-Hash"] = other.xet_hash
            if announce_size:
                headers["X-Linked-Size"] = str(other.size)
        return headers

    monkeypatch.setattr(hub_app, "read_headers", lying)
    return repo, good


def test_a_resolve_answer_naming_another_files_xet_hash_keeps_nothing(
    hub, write_token, tmp_path, xet_reads, monkeypatch
):
    """hf_xet rebuilds the file the answer names, cut to the listed size, without an error: the
    sha256 check refuses it, and nothing of it stays in the cache (before, the repo's blob link to
    the shared store was left behind)."""
    repo, good = _two_files_and_a_lying_resolve(hub, tmp_path, monkeypatch, announce_size=False)
    code, out, err = run_cli("download-lora", repo)
    assert code == 1, err
    line = _one_error_line(err)
    assert "sha256" in line and "removed from the cache" in line, line
    assert _left_in_cache(repo) == []


def test_a_resolve_answer_announcing_another_size_is_refused_before_xet_downloads(
    hub, write_token, tmp_path, xet_reads, monkeypatch
):
    """huggingface_hub gives hf_xet the size a resolve answer announces (X-Linked-Size), and hf_xet
    writes that many bytes of the file the answer names: a few-KB LoRA announced at gigabytes would
    fill the disk before the sha256 check. Refused at the answer, before any Xet request."""
    repo, good = _two_files_and_a_lying_resolve(hub, tmp_path, monkeypatch, announce_size=True)
    hub.reset_stats()
    code, out, err = run_cli("download-lora", repo)
    assert code == 1, err
    line = _one_error_line(err)
    assert "X-Linked-Size" in line and f"lists at {len(good):,} bytes" in line, line
    assert hub.stats.requests["xet_read_token"] == 0
    assert _left_in_cache(repo) == []


def test_a_head_answer_naming_a_xet_hash_and_another_content_length_is_refused(
    hub, hub_proxy, write_token, tmp_path, xet_reads, monkeypatch
):
    """Without X-Linked-Size, huggingface_hub takes the HEAD answer's Content-Length as the size it
    hands hf_xet: the same refusal, before any Xet request (hubpress/targets/listed_sizes.py)."""
    import hashlib

    from huggingface_hub import HfApi

    good = _lora_bytes(tmp_path)
    larger = _lora_bytes(tmp_path) * 3
    repo = f"alice/xet-dl-length-{uuid.uuid4().hex[:8]}"
    sha = _upload(repo, {WEIGHTS: good, "other.bin": larger})
    other = hub.app.xet.find(hashlib.sha256(larger).hexdigest())
    assert HfApi(endpoint=hub.url, token=WRITE_TOKEN).model_info(repo).sha == sha
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{hashlib.sha256(good).hexdigest()}"',
        "X-Xet-Hash": other.xet_hash,
        "X-Xet-Refresh-Route": f"{hub_proxy.url}/api/models/{repo}/xet-read-token/{sha}",
        "Content-Type": "application/octet-stream",
    }
    hub_proxy.answer(rf"^HEAD /{repo}/resolve/", 200, headers=headers, body=b"\0" * other.size, count=10)
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    hub.reset_stats()
    code, out, err = run_cli("download-lora", repo)
    assert hub_proxy.fired, "the HEAD answer was never given"
    assert code == 1, err
    line = _one_error_line(err)
    assert "Content-Length" in line and f"lists at {len(good):,} bytes" in line, line
    assert hub.stats.requests["xet_read_token"] == 0
    assert _left_in_cache(repo) == []
