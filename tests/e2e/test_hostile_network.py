"""Every wait ends, and every answer hubpress cannot use is one line: the CLI against the test Hub
behind a hostile proxy (tests/hostileproxy.py), and against S3 on a closed port.

The proxy's faults are the classes of issue 24: an answer dripped one byte at a time, a request
accepted and never answered, 300 MB of JSON (declared, or chunked without a length), a page that
is not JSON, `{}` from another origin after a redirect, and a download redirected to a host that
sends 2 bytes. Each run must end (pytest-timeout bounds every test), exit 1, print one or two lines
on stderr and no traceback. No test measures how long anything took.
"""

from __future__ import annotations

import socket
import uuid

# Imported here, while HF_ENDPOINT names the test Hub: `datasets` reads it once, when first
# imported, and a test below imports it with HF_ENDPOINT pointing at a proxy that then goes away.
import datasets  # noqa: F401
import pytest
from huggingface_hub import HfApi

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import WRITE_TOKEN, run_cli
from tests.hostileproxy import gzip_bomb

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("prefect_harness")]


def one_line_failure(code: int, err: str, what: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Prefect:")]
    assert code == 1, f"{what}: exit {code}\n{err}"
    assert "Traceback" not in err, f"{what}:\n{err}"
    assert 1 <= len(lines) <= 2, f"{what}: {len(lines)} lines on stderr\n{err}"
    assert lines[-1].startswith("error: "), err
    return lines[-1]


@pytest.fixture
def lora_repo(hub, tmp_path):
    """A model repo on the test Hub holding LoRA weights, created directly (not through the proxy)."""
    repo = f"alice/hostile-{uuid.uuid4().hex[:8]}"
    weights = write_lora(tmp_path / "pytorch_lora_weights.safetensors", seed=3)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=str(weights), path_in_repo=weights.name, repo_id=repo)
    return repo, weights


@pytest.mark.parametrize("kind", ["slow_loris", "never_answer"])
def test_a_stalled_download_ends_by_its_deadline(
    kind, hostile_proxy, lora_repo, write_token, tmp_cwd, monkeypatch
):
    repo, _ = lora_repo
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^(HEAD|GET) /{repo}/resolve/", kind, count=50)
    code, out, err = run_cli("download-lora", repo)
    line = one_line_failure(code, err, kind)
    assert "deadline" in line and hostile_proxy.url.split("//")[1] in line, line
    assert hostile_proxy.fired, "the fault was never reached"
    assert out == ""


def test_a_download_redirected_to_a_short_answer_is_one_line(
    hostile_proxy, lora_repo, write_token, tmp_cwd, monkeypatch
):
    """The resolve redirect leads to a host that sends 2 bytes ("Consistency check failed")."""
    repo, weights = lora_repo
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^GET /{repo}/resolve/", "redirect_short", count=50)
    code, out, err = run_cli("download-lora", repo)
    line = one_line_failure(code, err, "redirect_short")
    assert "cannot be used" in line
    assert out == ""
    # Nothing of the short answer is left as if it were the weights.
    cached = list((tmp_cwd / "hf-home").rglob(weights.name))
    assert all(p.stat().st_size == weights.stat().st_size for p in cached if p.is_file())
    # The token never travels to the other origin the redirect named.
    assert hostile_proxy.other_saw and not any("authorization" in h for h in hostile_proxy.other_saw)


@pytest.mark.parametrize(
    "kind", ["not_json", "huge_json", "huge_chunked", "gzip_bomb", "redirect_empty", "slow_loris"]
)
def test_an_unusable_hub_answer_is_one_line(kind, hostile_proxy, write_token, tmp_path, monkeypatch):
    """publish-lora's Hub API calls (repo info, create) answered with what the protocol never says."""
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", seed=4)
    repo = f"alice/answers-{uuid.uuid4().hex[:8]}"
    if kind == "gzip_bomb":
        gzip_bomb()  # made before the request: the proxy answers at once
    hostile_proxy.arm(r"^(GET|POST) /api/(models/|repos/create)", kind, count=50)
    code, out, err = run_cli("publish-lora", str(weights.parent), repo)
    line = one_line_failure(code, err, kind)
    assert hostile_proxy.fired, "the fault was never reached"
    if kind.startswith("huge") or kind == "gzip_bomb":
        assert "limit" in line
    elif kind == "slow_loris":
        assert "deadline" in line
    else:
        assert "cannot be used" in line
    if kind == "redirect_empty":  # the token never travels to the other origin the redirect named
        assert hostile_proxy.other_saw and not any("authorization" in h for h in hostile_proxy.other_saw)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_release_from_s3_on_a_closed_port_ends(hub, write_token, tmp_path, monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HUBPRESS_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    code, out, err = run_cli("release", "s3://runs/face-seg-42", "--repo", f"alice/s3-{uuid.uuid4().hex[:6]}")
    line = one_line_failure(code, err, "closed S3 port")
    assert f"127.0.0.1:{port}" in line


@pytest.mark.parametrize(
    ("kind", "pattern", "expected"),
    [
        ("slow_loris", r"^GET /datasets/{repo}/resolve/", "deadline"),  # parquet reads (HfFileSystem)
        ("not_json", r"^GET /api/datasets/{repo}", "cannot be used"),  # the upstream's info
        ("bad_sha", r"^GET /api/datasets/{repo}", "not a git commit id"),  # the pin of every read
    ],
    ids=["parquet-slow-loris", "info-not-json", "info-sha-no-commit"],
)
def test_an_upstream_dataset_that_stalls_or_lies_ends_a_refresh_in_one_line(
    kind, pattern, expected, hub, hostile_proxy, write_token, tmp_path
):
    """The upstream of a refresh is read through datasets/HfFileSystem: the same deadlines."""
    import json

    from datasets import Dataset

    upstream = f"alice/upstream-{uuid.uuid4().hex[:8]}"
    parquet = tmp_path / "train.parquet"
    Dataset.from_dict({"caption": ["a", "b"], "n": [1, 2]}).to_parquet(str(parquet))
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)  # straight to the Hub, not through the proxy
    api.create_repo(upstream, repo_type="dataset")
    api.upload_file(
        path_or_fileobj=str(parquet),
        path_in_repo="data/train-00000-of-00001.parquet",
        repo_id=upstream,
        repo_type="dataset",
    )
    config = tmp_path / "refresh.json"
    config.write_text(
        json.dumps(
            {
                "id": "up",
                "type": "huggingface",
                "dataset_name": upstream,
                "caption_strategy": "huggingface",
                "metadata_backend": "huggingface",
                "caption_column": "caption",
                "streaming": True,
                "cache_dir": str(tmp_path / "cache"),
            }
        )
    )
    hostile_proxy.arm(pattern.format(repo=upstream), kind, count=50)
    code, out, err = run_cli("refresh", str(config), str(tmp_path / "out"))
    line = one_line_failure(code, err, kind)
    assert expected in line, line
    assert hostile_proxy.fired, "the fault was never reached"


def test_the_python_api_gets_the_same_deadline(hostile_proxy, lora_repo, write_token, tmp_cwd, monkeypatch):
    """hubpress.api.download_lora, as a script calls it: a DeadlineExceeded (a HubpressError)."""
    from hubpress.api import download_lora
    from hubpress.deadlines import DeadlineExceeded

    repo, _ = lora_repo
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^(HEAD|GET) /{repo}/resolve/", "never_answer", count=50)
    with pytest.raises(DeadlineExceeded, match="did not finish answering within its 3 s deadline"):
        download_lora(repo)


def test_a_hub_answer_naming_no_commit_as_the_head_is_one_line(
    hostile_proxy, lora_repo, write_token, tmp_cwd, monkeypatch
):
    """A repo's info whose `sha` is not a commit id (`../../x`): hubpress pins downloads, listings
    and reads to that sha, so it is refused before anything uses it."""
    repo, _ = lora_repo
    monkeypatch.setenv("HF_HOME", str(tmp_cwd / "hf-home"))
    hostile_proxy.arm(rf"^GET /api/models/{repo}", "bad_sha", count=50)
    code, out, err = run_cli("download-lora", repo)
    line = one_line_failure(code, err, "bad_sha")
    assert hostile_proxy.fired and "not a git commit id" in line and "../../x" in line, line
    assert out == ""


@pytest.mark.parametrize("kind", ["echo_token", "echo_token_glued"])
def test_a_server_repeating_the_token_in_its_error_never_gets_it_printed(
    kind, hostile_proxy, write_token, tmp_path, monkeypatch
):
    """A Hub (or proxy) whose error message repeats the request's Authorization header: hubpress
    says what failed in one line, without the token."""
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    weights = write_lora(tmp_path / "w" / "pytorch_lora_weights.safetensors", seed=4)
    repo = f"alice/echo-{uuid.uuid4().hex[:8]}"
    hostile_proxy.arm(r"^(GET|POST) /api/(models/|repos/create)", kind, count=50)
    code, out, err = run_cli("publish-lora", str(weights.parent), repo)
    one_line_failure(code, err, kind)
    assert hostile_proxy.fired, "the fault was never reached"
    assert WRITE_TOKEN not in err and WRITE_TOKEN not in out, err
    assert WRITE_TOKEN[3:] not in err + out, err  # not even the part after a pattern's `hf_`


def test_a_listing_whose_next_page_is_itself_ends_in_one_line(
    hostile_proxy, lora_repo, write_token, tmp_path, monkeypatch
):
    """A repo's file listing whose `Link: rel="next"` names the page just read: followed as is, it
    never ends. A listing that names a path twice is refused."""
    repo, weights = lora_repo
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    hostile_proxy.arm(rf"^GET /api/models/{repo}/tree/", "link_loop", count=1000)
    code, out, err = run_cli("publish-lora", str(weights.parent), repo)
    line = one_line_failure(code, err, "link_loop")
    assert hostile_proxy.fired and "twice" in line, line
