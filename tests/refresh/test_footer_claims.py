"""An upstream parquet file whose footer claims enormous sizes (a row group of billions of rows,
column chunks of gigabytes) in a file of a few KB. A refresh refuses it in one line naming the
dataset and the file, exit 1, before pyarrow allocates for the claim. The CLI runs in a child
process under an address-space limit, so a regression fails the test rather than the machine."""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.refresh.test_lying_footer import upstream_of_one_file

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROWS = 300  # its thrift compact encoding (zigzag varint d8 04) is found in the footer to patch


def _compact_i64(value: int) -> bytes:
    """A thrift compact i64 field following its neighbour (header 0x16), zigzag varint value."""
    n, out = (value << 1) ^ (value >> 63), bytearray(b"\x16")
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _parquet_claiming(claimed: dict[int, int], count: int = -1) -> bytes:
    """A small parquet file whose footer says `new` where it said `old` (each an i64 field): at
    its first `count` places, or all."""
    table = pa.table({"caption": ["a caption"] * ROWS, "image": [b"x" * 10] * ROWS})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none")
    data = buf.getvalue()
    length = struct.unpack("<I", data[-8:-4])[0]
    body, footer = data[: -8 - length], data[-8 - length : -8]
    for old, new in claimed.items():
        assert _compact_i64(old) in footer
        footer = footer.replace(_compact_i64(old), _compact_i64(new), count)
    return body + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _chunk_size() -> int:
    table = pa.table({"caption": ["a caption"] * ROWS, "image": [b"x" * 10] * ROWS})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none")
    return pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata.row_group(0).column(0).total_compressed_size


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.parametrize("streaming", [False, True])
def test_a_footer_claiming_billions_of_rows_is_refused_in_one_line(hub, write_token, tmp_path, streaming):
    # Without streaming, pyarrow asked malloc for 16 GB reading the row group (a traceback here,
    # under the limit); streaming, the 300 rows there were read as if whole, with no word.
    data = _parquet_claiming({ROWS: 5_000_000_000})
    repo, config = upstream_of_one_file(data, tmp_path, streaming, "footer-claims")
    out = tmp_path / "out"

    from prefect.settings import PREFECT_API_URL

    run = subprocess.run(
        [sys.executable, "-m", "hubpress.commands.cli", "refresh", str(config), str(out)],
        capture_output=True,
        text=True,
        # the harness's server: a temporary server of its own was most of the test's time
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
        preexec_fn=_limit_memory,
        timeout=300,
    )

    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repo in errors[0] and "train-00000-of-00001.parquet" in errors[0], run.stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))


@pytest.mark.parametrize(
    ("claimed", "count", "why", "spans_read_it"),
    [
        # column chunks of 8 GB: pyarrow itself refuses a chunk past the end of the file when it
        # reads one (`spans` reads only the row counts)
        (lambda: {_chunk_size(): 8 << 30}, -1, "corrupt file", False),
        # the file's row count above its row groups' sum: rows would be numbered wrongly
        (lambda: {ROWS: ROWS + 1}, 1, "but its row groups hold 300", True),
    ],
)
def test_other_footer_claims_are_a_damaged_file(tmp_path, claimed, count, why, spans_read_it):
    from hubpress.errors import SourceError
    from hubpress.refresh.parquet_stream import ParquetStream

    path = tmp_path / "train-0.parquet"
    path.write_bytes(_parquet_claiming(claimed(), count))
    stream = ParquetStream.open([str(path)], dataset="alice/up")
    reads = [lambda: list(stream), lambda: list(stream.rows_at([0]))] + [stream.spans] * spans_read_it
    for read in reads:
        with pytest.raises(SourceError, match=why) as refused:
            read()
        assert "alice/up" in str(refused.value) and "train-0.parquet" in str(refused.value)
