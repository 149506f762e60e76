"""An upstream parquet file whose footer lies: it declares a footer longer than the file, or page
headers that are not there. A refresh stops in one line naming the dataset and the file, exit 1,
never a traceback, and nothing is written to the output."""

from __future__ import annotations

import io
import json
import struct
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import HUB_URL, WRITE_TOKEN, run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _parquet() -> bytes:
    table = pa.table({"caption": ["a caption"] * 3, "image": [b"x" * 100] * 3})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _footer_longer_than_the_file(data: bytes) -> bytes:
    return data[:-8] + struct.pack("<I", 0x7FFFFFFF) + b"PAR1"


def _page_headers_not_there(data: bytes) -> bytes:
    footer = struct.unpack("<I", data[-8:-4])[0]
    pages = len(data) - 8 - footer - 4
    return b"PAR1" + b"\xff" * pages + data[-8 - footer :]


def upstream_of_one_file(
    data: bytes, tmp_path, streaming: bool, name: str, path: str = "data/train-00000-of-00001.parquet"
):
    """(repo, refresh config) of a new upstream dataset on the test Hub holding `data` as its one
    data file, `path` (by default one parquet file)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=HUB_URL, token=WRITE_TOKEN)
    repo = f"alice/{name}-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo, repo_type="dataset")
    sha = api.create_commit(
        repo, [CommitOperationAdd(path, data)], commit_message="rows", repo_type="dataset"
    ).oid
    config = tmp_path / "multidatabackend.json"
    backend = {"id": "up", "type": "huggingface", "dataset_name": repo, "revision": sha}
    backend |= {"caption_column": "caption", "streaming": streaming, "cache_dir": str(tmp_path / "cache")}
    config.write_text(json.dumps([backend]))
    return repo, config


@pytest.mark.parametrize("lie", [_footer_longer_than_the_file, _page_headers_not_there])
@pytest.mark.parametrize("streaming", [False, True])
def test_a_parquet_file_whose_footer_lies_stops_the_refresh_in_one_line(
    hub, write_token, tmp_path, lie, streaming
):
    repo, config = upstream_of_one_file(lie(_parquet()), tmp_path, streaming, "lying-footer")
    out = tmp_path / "out"

    code, stdout, stderr = run_cli("refresh", str(config), str(out))

    assert code == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repo in errors[0] and "train-00000-of-00001.parquet" in errors[0], stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))


def test_running_out_of_memory_is_not_called_a_damaged_file():
    # pyarrow's ArrowMemoryError is an ArrowException too: it read as "not readable parquet ...
    # fix or remove the file upstream", sending the user to a file that is fine.
    import pyarrow as pa

    from hubpress.refresh.parquet_stream import _damaged

    with pytest.raises(MemoryError), _damaged("alice/up", "data/train-0.parquet"):
        raise pa.ArrowMemoryError("malloc of size 8589934592 failed")
