"""The dataset viewer's limits, checked on a repo's parquet files as the viewer would read them:
about 100 rows per row group when rows hold images, no row group over 286 MiB uncompressed (the
viewer fails above that), and a page index (offset index) on every column chunk.

    problems = viewer_problems(server, "dataset", "alice/data")   # [] when the viewer can read it
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

IMAGE_ROWS_PER_GROUP = 100
MAX_ROW_GROUP_BYTES = 286 * 1024**2


def _has_images(schema: pa.Schema) -> bool:
    def image(t: pa.DataType) -> bool:
        if pa.types.is_struct(t):
            names = {t.field(i).name for i in range(t.num_fields)}
            return {"bytes", "path"} <= names or any(image(t.field(i).type) for i in range(t.num_fields))
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return image(t.value_type)
        return False

    return any(image(field.type) for field in schema)


def parquet_problems(path: str, source) -> list[str]:
    """What in one parquet file (a path or file object) the viewer cannot take."""
    reader = pq.ParquetFile(source)
    meta = reader.metadata
    images = _has_images(reader.schema_arrow)
    problems = []
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        if images and group.num_rows > IMAGE_ROWS_PER_GROUP:
            problems.append(
                f"{path}: row group {index} holds {group.num_rows} rows of images (viewer: about 100)"
            )
        if group.total_byte_size > MAX_ROW_GROUP_BYTES:
            problems.append(
                f"{path}: row group {index} is {group.total_byte_size} bytes uncompressed (viewer: 286 MiB)"
            )
        if not all(group.column(c).has_offset_index for c in range(group.num_columns)):
            problems.append(f"{path}: row group {index} has no page index")
    return problems


def viewer_problems(server, repo_type: str, repo_id: str, rev: str = "main") -> list[str]:
    """Every problem the viewer would have with the parquet files of `repo_id` at `rev`."""
    import io

    repo = server.store.get(repo_type, repo_id)
    sha, _ = repo.resolve(rev)
    problems = []
    for path in sorted(repo.snapshot(sha).files):
        if path.endswith(".parquet"):
            problems += parquet_problems(path, io.BytesIO(server.read_file(repo_type, repo_id, path, sha)))
    return problems
