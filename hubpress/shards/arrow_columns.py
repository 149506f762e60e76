"""Arrow arrays of a shard's plain columns, made from their buffers.

`pyarrow.array(values)` first asks pandas whether `values` is array-like, and the first ask in a
process imports pandas: 0.2-0.26 s of CPU under the GIL, in the build's threads, on every
changed night (a night that builds nothing imports neither). `StructArray.from_arrays(mask=...)`
imports pyarrow.compute (about 0.1 s) for an image column with nulls (a dataset without masks).
A shard's ids, prompts, file names, null masks, list offsets and image structs are simple enough
to lay out here, exactly as pyarrow lays them out (tests/shards/test_arrow_columns.py holds them
equal).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

_INT32_MAX = 2**31 - 1


def _bitmap(bits: Sequence[bool]):
    """Arrow's validity/boolean layout: bit i of the little-endian bytes is bits[i]."""
    import pyarrow as pa

    value = sum(1 << i for i, bit in enumerate(bits) if bit)
    return pa.py_buffer(value.to_bytes((len(bits) + 7) // 8 or 1, "little"))


def string_array(values: Sequence[str | None]) -> pa.Array:
    """pa.array(values, pa.string()): UTF-8 bytes with int32 offsets, None as null."""
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = array("i", [0])
    end = 0
    for data in encoded:
        end += len(data)
        if end > _INT32_MAX:
            raise ValueError("A row group's text exceeds 2 GB; lower row_group_bytes.")
        offsets.append(end)
    nulls = sum(1 for v in values if v is None)
    validity = _bitmap([v is not None for v in values]) if nulls else None
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers, null_count=nulls)


def int32_array(values: array) -> pa.Array:
    """pa.array(values, pa.int32()) of an array('i') without nulls (its buffer, not copied)."""
    import pyarrow as pa

    if values.typecode != "i" or values.itemsize != 4:
        raise TypeError("int32_array takes an array('i') of 4-byte items")
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)], null_count=0)


def struct_array(struct_type: pa.StructType, children: list[pa.Array], present: Sequence[bool]) -> pa.Array:
    """StructArray.from_arrays(children, fields=list(struct_type), mask=[not p for p in present]):
    the struct is null where `present` is False; the children are kept as they are."""
    import pyarrow as pa

    nulls = sum(1 for p in present if not p)
    validity = _bitmap(present) if nulls else None
    return pa.Array.from_buffers(struct_type, len(present), [validity], null_count=nulls, children=children)
