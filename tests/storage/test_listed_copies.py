"""A copy of a listed file is the file that was listed, or nothing.

The post-training release copied the chosen checkpoint's weights, config and samples with a plain
`get_file`, whose only check was that the path stays inside its root: weights rewritten after the
listing (a trainer still saving, another job), an S3 object written over since, or an S3 store
answering other bytes than the object it listed (more, fewer) were staged, hashed as they came and
published as the checkpoint that was selected by its listing. `get_listed` holds the copy to the
listing (local: the path, size and stat version of hubpress.storage.listed_reads; S3: If-Match the
listed ETag, and the answer's ETag and length), and removes what it wrote when they differ.

The hostile store is a small S3-speaking server (real botocore, no patching) that answers any GET
with the ETag asked for and a body of its own length."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from hubpress.settings import Settings
from hubpress.storage.files import ListedFile, open_storage
from hubpress.storage.listed_reads import NotTheListedFile
from hubpress.storage.s3 import S3Storage


def test_a_local_file_rewritten_after_its_listing_is_not_copied(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    (root / "w.safetensors").write_bytes(b"listed weights")
    storage = open_storage(str(root))
    listed = next(f for f in storage.list() if f.relpath == "w.safetensors")
    (root / "w.safetensors").write_bytes(b"OTHER! weights")  # same size, written since
    dest = tmp_path / "copy.bin"

    with pytest.raises(NotTheListedFile, match="no longer the file that was listed"):
        storage.get_listed(listed, dest)
    assert not dest.exists()
    fresh = next(f for f in storage.list() if f.relpath == "w.safetensors")
    storage.get_listed(fresh, dest)
    assert dest.read_bytes() == b"OTHER! weights"


def test_an_s3_object_written_over_after_its_listing_is_not_copied(s3, tmp_path):
    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    client.put_object(Bucket=bucket, Key="run/w.safetensors", Body=b"listed weights")
    storage = open_storage(f"s3://{bucket}/run", Settings())
    listed = next(iter(storage.list()))
    client.put_object(Bucket=bucket, Key="run/w.safetensors", Body=b"OTHER! weights")
    dest = tmp_path / "copy.bin"

    with pytest.raises(NotTheListedFile, match="written over since"):
        storage.get_listed(listed, dest)
    assert not dest.exists()


BODY = {"short": b"12345", "long": b"x" * 5000}


class _OtherBytes(BaseHTTPRequestHandler):
    """Any GET: 200, the ETag the request's If-Match names, and a body of another length."""

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        body = BODY[self.path.rsplit("/", 1)[-1]]
        self.send_response(200)
        self.send_header("ETag", self.headers.get("If-Match") or '"e"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def other_bytes(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtherBytes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HUBPRESS_S3_MAX_ATTEMPTS", "1")
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["short", "long"])
def test_an_s3_answer_of_another_length_than_listed_is_not_kept(other_bytes, tmp_path, name):
    storage = S3Storage("s3://b/run", Settings())
    dest = tmp_path / "copy.bin"

    with pytest.raises(NotTheListedFile) as info:
        storage.get_listed(ListedFile(name, 100, "e1"), dest)
    line = str(info.value)
    assert "s3://b/run/" + name in line and "100 bytes" in line and "\n" not in line, line
    assert not dest.exists()


def test_a_release_does_not_stage_weights_rewritten_after_the_listing(tmp_path, monkeypatch):
    """Through the release's own staging step: the weights the selection listed are rewritten
    (same size) before they are copied; the release stops in one line and stages nothing."""
    import hubpress.lora.publish as publish
    from hubpress.lora.publish import prepare_release
    from hubpress.testdata.synth_lora import write_lora

    run = tmp_path / "run"
    weights = write_lora(run / "checkpoint-10" / "pytorch_lora_weights.safetensors", seed=2)
    other = write_lora(tmp_path / "other.safetensors", seed=5)
    assert other.stat().st_size == weights.stat().st_size
    listed_then_rewritten = publish.release_files

    def rewritten_after_listing(output, checkpoint):
        files = listed_then_rewritten(output, checkpoint)
        weights.write_bytes(other.read_bytes())  # a trainer still saving, after the listing
        return files

    monkeypatch.setattr(publish, "release_files", rewritten_after_listing)
    staging = tmp_path / "staging"
    settings = Settings(staging=str(staging), cache_dir=str(tmp_path / "cache"))

    with pytest.raises(NotTheListedFile, match="pytorch_lora_weights.safetensors"):
        prepare_release(str(run), "latest", settings)
    staged = [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []
    assert not [p for p in staged if p.read_bytes() == other.read_bytes()], staged
    assert not [p for p in staged if p.name == "_complete.json"], staged
