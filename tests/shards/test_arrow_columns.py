"""A shard's plain columns are laid out from their buffers exactly as pyarrow.array lays them
out, and building a shard imports no pandas (pyarrow.array's first call would)."""

from __future__ import annotations

import subprocess
import sys
from array import array

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.arrow_columns import int32_array, string_array, struct_array


@settings(deadline=None, max_examples=50)  # the first pa.array call imports pandas
@given(st.lists(st.one_of(st.none(), st.text()), max_size=40))
def test_a_string_column_equals_pyarrows(values):
    built = string_array(values)
    expected = pa.array(values, pa.string())
    assert built.equals(expected)
    assert built.null_count == expected.null_count
    built.validate(full=True)


@settings(deadline=None, max_examples=50)  # the first pa.array call imports pandas
@given(st.lists(st.integers(0, 2**31 - 1), max_size=40))
def test_an_int32_column_equals_pyarrows(values):
    built = int32_array(array("i", values))
    assert built.equals(pa.array(values, pa.int32()))
    built.validate(full=True)


@settings(deadline=None, max_examples=50)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=8), st.one_of(st.none(), st.text(max_size=8)))))
def test_an_image_struct_equals_pyarrows(rows):
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    children = [
        pa.array([b for _, b, _ in rows], pa.binary()),
        pa.array([p for _, _, p in rows], pa.string()),
    ]
    present = [keep for keep, _, _ in rows]
    built = struct_array(image, children, present)
    mask = pa.array([not keep for keep in present], pa.bool_())
    assert built.equals(pa.StructArray.from_arrays(children, fields=list(image), mask=mask))
    built.validate(full=True)


BUILD = """
import sys
from pathlib import Path
from hubpress.shards.shards import plan_shards, write_shard
from hubpress.sources.reader import SourceReader
from tests.shard_helpers import make_sample
root = Path(sys.argv[1])
samples = [make_sample(root, f"s{n}", mask=n % 2 == 0, target=n % 3 != 0) for n in range(6)]
(plan,) = plan_shards("train", samples, "10MB")
built = write_shard(plan, root / "shard.parquet", SourceReader())
print("pandas" in sys.modules, "pyarrow.compute" in sys.modules)
"""


def test_building_a_shard_imports_neither_pandas_nor_pyarrow_compute(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
    table = pq.read_table(tmp_path / "shard.parquet")
    assert table.column("id").to_pylist() == [f"s{n}" for n in range(6)]
    assert table.column("control_mask").null_count == 3
    assert table.column("target_image").null_count == 2
    names = table.column("control_images").to_pylist()
    assert all(len(cell) == 1 and cell[0]["path"].endswith(".png") for cell in names)
