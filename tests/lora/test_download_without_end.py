"""A download whose answer does not end where the Hub's listing says the file does: the resolve
GET streams bytes without a length, or declares 100 GB (tests/hostileproxy.py's endless_file and
huge_file in front of the test Hub, the HEAD answered truly). huggingface_hub writes every byte it
is given to the cache and compares the size only at the end, and a file body is bounded by its
deadline alone (120 s, plus 68 min a GB declared): a few-KB LoRA filled the disk with up to the
proxy's 300 MB. download-lora holds the answer to the size the Hub lists for the file: one line,
exit 1, nothing left in the cache, and the proxy got out little more than the file's size."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.e2e.test_hostile_network import lora_repo, one_line_failure  # noqa: F401 - a fixture

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("prefect_harness")]


def _nothing_longer_left(hf_home, weights) -> None:
    left = [p for p in hf_home.rglob("*") if p.is_file() and p.stat().st_size > weights.stat().st_size]
    assert not left, left


@pytest.mark.parametrize("kind", ["endless_file", "huge_file"])
def test_a_download_that_sends_more_than_the_listed_size_stops_at_that_size(
    kind,
    hostile_proxy,
    lora_repo,  # noqa: F811 - the fixture imported above
    write_token,
    tmp_cwd,
    monkeypatch,
):
    repo, weights = lora_repo
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^GET /{repo}/resolve/", kind, count=50)
    code, out, err = run_cli("download-lora", repo)
    assert hostile_proxy.fired, "the fault was never reached"
    # Kernel buffers take a few MB before the client's refusal closes the connection; before,
    # all 300 MB were taken (and written to the cache).
    assert hostile_proxy.file_bytes_sent < 32 * 1024**2, hostile_proxy.file_bytes_sent
    line = one_line_failure(code, err, kind)
    assert "lists" in line and "bytes" in line, line
    assert out == ""
    _nothing_longer_left(tmp_cwd / "hf-home", weights)


def test_a_card_read_from_the_target_that_never_ends_stops_at_its_listed_size(
    hostile_proxy,
    lora_repo,  # noqa: F811 - the fixture imported above
    write_token,
    tmp_path,
    monkeypatch,
):
    """publish-lora reads the repo's README.md to merge its card: the same bound holds there
    (the listed size, else the 16 MB document limit), before the bytes reach the disk."""
    from huggingface_hub import HfApi

    from tests.conftest import HUB_URL, WRITE_TOKEN

    repo, weights = lora_repo
    HfApi(endpoint=HUB_URL, token=WRITE_TOKEN).upload_file(
        path_or_fileobj=b"# my notes\n", path_in_repo="README.md", repo_id=repo
    )
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("HUBPRESS_CACHE_DIR", str(tmp_path / "cache"))
    hostile_proxy.arm(rf"^GET /{repo}/resolve/[^/]+/README.md", "endless_file", count=50)
    code, out, err = run_cli("publish-lora", str(weights.parent), repo)
    assert hostile_proxy.fired, "the fault was never reached"
    assert hostile_proxy.file_bytes_sent < 32 * 1024**2, hostile_proxy.file_bytes_sent
    line = one_line_failure(code, err, "endless README.md")
    assert "README.md" in line and "lists" in line, line


def test_a_gzipped_download_is_held_to_the_listed_size_once_decoded(
    hostile_proxy,
    lora_repo,  # noqa: F811 - the fixture imported above
    write_token,
    tmp_cwd,
    monkeypatch,
):
    """The bound counted the bytes on the wire, and httpx undid Content-Encoding after it: a few
    hundred gzipped bytes (tests/hostileproxy.py's gzip_file) wrote 80 MB into the cache for a
    LoRA the Hub lists at a few KB. The decoded bytes are what is held to the listed size."""
    repo, weights = lora_repo
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^GET /{repo}/resolve/", "gzip_file", count=50)
    code, out, err = run_cli("download-lora", repo)
    assert hostile_proxy.fired, "the fault was never reached"
    line = one_line_failure(code, err, "gzip_file")
    assert "sent more than" in line and "which the Hub lists at" in line, line
    assert out == ""
    _nothing_longer_left(tmp_cwd / "hf-home", weights)
