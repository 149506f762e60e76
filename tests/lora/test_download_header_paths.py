"""A Hub whose resolve answer puts a path in a header huggingface_hub makes a cache path of.

huggingface_hub names a downloaded file's blob `blobs/<ETag>` (X-Linked-Etag, else ETag) and its
snapshot entry `snapshots/<X-Repo-Commit>/<path>`, from the resolve answer's headers as they come:
an ETag of `/some/where/file` (os.path.join keeps the last absolute part) or `../../x` had the
downloaded bytes written there, anywhere this user may write. hubpress's transport refuses such an
answer before huggingface_hub sees it: one line, exit 1, nothing written outside the cache."""

from __future__ import annotations

import uuid

import pytest

from hubpress.testdata.synth_lora import write_lora
from tests.conftest import requires_xet, run_cli
from tests.lora.test_download_checks import WEIGHTS, _one_error_line, _upload

# The test Hub adds what `read_headers` returns to every resolve answer of an LFS file (it is how
# it names a file's Xet hash), after its own ETag: the hook through which it answers like a hostile Hub.
pytestmark = requires_xet


@pytest.mark.parametrize(
    ("header", "spelling"),
    [
        ("X-Linked-Etag", "{planted}"),  # absolute: os.path.join keeps it whole
        ("X-Linked-Etag", "../../../../../../../../../..{planted}"),
        ("ETag", "{planted}"),
        ("X-Repo-Commit", "../../../../../../../../../..{planted}"),
        ("X-Linked-Etag", ""),  # blobs/ itself: the folder of every blob
        ("X-Linked-Etag", "."),
    ],
    ids=[
        "linked-etag-absolute",
        "linked-etag-dotdot",
        "etag-absolute",
        "repo-commit-dotdot",
        "linked-etag-empty",
        "linked-etag-dot",
    ],
)
def test_a_path_in_a_resolve_header_writes_nothing_there(
    hub, write_token, tmp_path, monkeypatch, header, spelling
):
    import tests.hubserver.app as hub_app

    weights = write_lora(tmp_path / WEIGHTS, seed=uuid.uuid4().int % 10_000).read_bytes()
    repo = f"alice/etag-path-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: weights})
    planted = tmp_path / "elsewhere" / "planted"
    planted.parent.mkdir()
    value = spelling.format(planted=planted)
    honest = hub_app.read_headers

    def hostile(cas, base_url, token_path, sha256):
        headers = dict(honest(cas, base_url, token_path, sha256))
        headers[header] = value if header == "X-Repo-Commit" else f'"{value}"'
        if header == "X-Linked-Etag":  # the header huggingface_hub prefers
            headers["ETag"] = headers[header]
        return headers

    monkeypatch.setattr(hub_app, "read_headers", hostile)

    code, out, err = run_cli("download-lora", repo)

    assert not any(planted.parent.iterdir()), list(planted.parent.iterdir())
    assert code == 1, (out, err)
    line = _one_error_line(err)
    assert header in line and "resolve" in line, line


@pytest.mark.usefixtures("prefect_harness")
def test_a_path_in_the_headers_of_a_resolve_moved_on_the_hub_writes_nothing_there(
    hostile_proxy, write_token, tmp_path, monkeypatch
):
    """huggingface_hub follows a resolve answer's redirect on the same host to any path and takes
    the file's ETag and commit from the answer there: the check holds on that answer too, not
    only on a path with /resolve/ in it (a Hub's own redirects go to /api/resolve-cache/...)."""
    from tests.conftest import run_cli

    weights = write_lora(tmp_path / WEIGHTS, seed=uuid.uuid4().int % 10_000).read_bytes()
    repo = f"alice/etag-moved-{uuid.uuid4().hex[:8]}"
    _upload(repo, {WEIGHTS: weights})
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    planted = tmp_path / "elsewhere" / "planted"
    planted.parent.mkdir()
    hostile_proxy.planted_etag = str(planted)
    hostile_proxy.arm(rf"^(HEAD|GET) /{repo}/resolve/", "redirect_moved", count=20)
    hostile_proxy.arm(r"^(HEAD|GET) /moved/", "moved_path_etag", count=20)

    code, out, err = run_cli("download-lora", repo)

    assert any(kind == "moved_path_etag" for kind, _ in hostile_proxy.fired), hostile_proxy.fired
    assert not any(planted.parent.iterdir()), list(planted.parent.iterdir())
    assert code == 1, (out, err)
    line = _one_error_line(err)
    assert "X-Linked-Etag" in line, line
