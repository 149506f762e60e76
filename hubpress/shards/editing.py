"""The qflux editing schema and its rows as Arrow tables, built from the samples' source files.

Image bytes are stored as they are (never decoded, never re-encoded), as datasets' Image
storage type: a struct of the file's bytes and a file name whose extension follows the true
format. A row group's image column is built straight into one Arrow buffer, so a row group
costs its image bytes once.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from hubpress.shards.arrow_columns import int32_array, string_array, struct_array
from hubpress.sources.models import FileRef, Sample

if TYPE_CHECKING:  # pyarrow is imported where a table is built: an unchanged publish never loads it
    import pyarrow as pa

COLUMNS = ("id", "control_images", "control_mask", "target_image", "prompt")

FORMAT_EXTENSIONS = {
    "png": "png",
    "jpeg": "jpg",
    "jpg": "jpg",
    "webp": "webp",
    "bmp": "bmp",
    "tiff": "tiff",
    "gif": "gif",
    "mpo": "jpg",
}


@cache
def editing_features():
    """The qflux editing schema as datasets Features (imported lazily: datasets is a heavy import)."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "control_images": List(Image()),
            "control_mask": Image(),
            "target_image": Image(),
            "prompt": Value("string"),
        }
    )


@cache
def editing_schema() -> pa.Schema:
    """Arrow schema with the `huggingface` metadata key exactly as datasets writes it (held as data
    in hubpress.shards.editing_format: building a shard does not import datasets)."""
    from hubpress.shards.editing_format import arrow_schema

    return arrow_schema()


def file_extension(relpath: str) -> str:
    name = relpath.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else "bin"


def image_file_name(ref: FileRef) -> str:
    """The source file's own name, as qflux's upload keeps it (datasets stores an image file's base
    name), with the extension of its true format when the file's own extension says otherwise."""
    name = ref.relpath.replace("\\", "/").rsplit("/", 1)[-1]
    ext = FORMAT_EXTENSIONS.get((ref.format or "").lower())
    if ext is None or FORMAT_EXTENSIONS.get(file_extension(name)) == ext:
        return name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}.{ext}"


class _ImageColumn:
    """One image column of a row group, built straight into one Arrow buffer.

    The buffer is sized up front from the FileRef sizes and comes from Arrow's memory pool, and
    each image's bytes are copied in as soon as they are read, so a row group costs its image
    bytes once. (Building from Python rows costs them about twice, and growing Python buffers
    fragments the C heap so that peak memory creeps up from one row group to the next.)"""

    def __init__(self, capacity: int) -> None:
        import pyarrow as pa

        self._buffer = pa.allocate_buffer(max(capacity, 1))
        self._view = memoryview(self._buffer).cast("B")
        self._length = 0
        self.offsets = array("i", [0])  # binary (int32 offsets), as datasets' Image storage type
        self.paths: list[str | None] = []
        self.present: list[bool] = []

    def add(self, ref: FileRef | None, name: str | None, read_bytes: Callable[[FileRef], bytes]) -> None:
        if ref is not None:
            data = read_bytes(ref)
            end = self._length + len(data)
            if end > _INT32_MAX:
                raise ValueError("A row group's images exceed 2 GB; lower row_group_bytes.")
            if end > len(self._view):  # the file is larger than listed (no sha256 to hold it to)
                self._grow(end)
            self._view[self._length : end] = data
            self._length = end
        self.offsets.append(self._length)
        self.paths.append(name)
        self.present.append(ref is not None)

    def _grow(self, needed: int) -> None:
        import pyarrow as pa

        bigger = pa.allocate_buffer(max(needed, 2 * len(self._view)))
        view = memoryview(bigger).cast("B")
        view[: self._length] = self._view[: self._length]
        self._view.release()
        self._buffer, self._view = bigger, view

    def to_arrow(self, image_type: pa.StructType) -> pa.StructArray:
        import pyarrow as pa

        count = len(self.paths)
        data = self._buffer.slice(0, self._length)
        binary = pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(self.offsets), data])
        return struct_array(image_type, [binary, string_array(self.paths)], self.present)


_INT32_MAX = 2**31 - 1


def editing_table(group: tuple[Sample, ...], read_bytes: Callable[[FileRef], bytes]) -> pa.Table:
    import pyarrow as pa

    schema = editing_schema()
    controls = _ImageColumn(sum(r.size for s in group for r in s.controls))
    mask = _ImageColumn(sum(s.mask.size for s in group if s.mask is not None))
    target = _ImageColumn(sum(s.target.size for s in group if s.target is not None))
    control_offsets = array("i", [0])
    for sample in group:
        if not sample.controls:
            raise ValueError(f"Sample {sample.id!r} has no control image; intake should have skipped it.")
        for ref in sample.controls:
            controls.add(ref, image_file_name(ref), read_bytes)
        control_offsets.append(control_offsets[-1] + len(sample.controls))
        mask.add(sample.mask, sample.mask and image_file_name(sample.mask), read_bytes)
        target.add(sample.target, sample.target and image_file_name(sample.target), read_bytes)
    list_type = schema.field("control_images").type
    image_type = schema.field("control_mask").type
    columns = [
        string_array([s.id for s in group]),
        pa.ListArray.from_arrays(int32_array(control_offsets), controls.to_arrow(image_type), type=list_type),
        mask.to_arrow(image_type),
        target.to_arrow(image_type),
        string_array([s.prompt for s in group]),
    ]
    table = pa.Table.from_arrays(columns, schema=schema)
    table.validate()
    return table
