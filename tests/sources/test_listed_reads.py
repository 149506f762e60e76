"""A source file read as the file the listing saw, inside the source: a train.csv that is a
symbolic link to a CSV elsewhere (at listing time, or swapped in after it) is not read, and an
image replaced after the listing is reported, not read. Before, the linked CSV's cells were
published as the source's prompts."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from hubpress.sources.facts_cache import FileJob
from hubpress.sources.intake import read_csv_texts
from hubpress.sources.policy import IntakeOptions
from hubpress.sources.validation import check_files
from hubpress.storage.files import LocalStorage
from hubpress.storage.listed_reads import NotTheListedFile
from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli

SECRET = "SECRET-FROM-OUTSIDE-THE-SOURCE"


def _csv_source(tmp_path: Path) -> tuple[Path, Path]:
    """(source in the CSV layout, a CSV outside it naming the same images with other prompts)."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    write_dataset(src, samples=3, image_size=16, layout="csv")
    rows = list(csv.reader(io.StringIO((src / "train.csv").read_text())))
    column = rows[0].index("prompt")
    for row in rows[1:]:
        row[column] = SECRET
    outside.mkdir()
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    (outside / "train.csv").write_text(buf.getvalue())
    return src, outside / "train.csv"


def _link_out(path: Path, to: Path) -> None:
    path.unlink()
    path.symlink_to(to)


def test_a_csv_linked_outside_the_source_is_not_read(tmp_path):
    src, elsewhere = _csv_source(tmp_path)
    _link_out(src / "train.csv", elsewhere)
    code, out, err = run_cli("scan", str(src), "--json")
    assert code == 1, out + err
    assert "Traceback" not in err and SECRET not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train.csv" in errors[0] and "outside" in errors[0], err


@pytest.mark.usefixtures("prefect_harness")
def test_a_publish_with_a_csv_linked_outside_publishes_none_of_it(tmp_path):
    src, elsewhere = _csv_source(tmp_path)
    _link_out(src / "train.csv", elsewhere)
    target = tmp_path / "out"
    code, out, err = run_cli("publish-dataset", str(src), str(target))
    assert code == 1 and "Traceback" not in err, out + err
    assert [line for line in err.splitlines() if line.startswith("error:")], err
    published = [p for p in target.rglob("*") if p.is_file()] if target.exists() else []
    assert all(SECRET.encode() not in p.read_bytes() for p in published)


def test_a_csv_swapped_for_a_link_out_after_the_listing_is_not_read(tmp_path):
    src, elsewhere = _csv_source(tmp_path)
    storage = LocalStorage(src)
    listing = list(storage.list())
    _link_out(src / "train.csv", elsewhere)
    with pytest.raises(NotTheListedFile, match="train.csv"):
        read_csv_texts(storage, listing, IntakeOptions())


def test_a_csv_replaced_after_the_listing_is_not_read(tmp_path):
    """Even inside the source: the file read is the file listed, or nothing."""
    src, elsewhere = _csv_source(tmp_path)
    storage = LocalStorage(src)
    listing = list(storage.list())
    os.replace(elsewhere, src / "train.csv")
    with pytest.raises(NotTheListedFile, match="no longer the file that was listed"):
        read_csv_texts(storage, listing, IntakeOptions())


def test_an_image_replaced_after_the_listing_is_reported_not_read(tmp_path):
    src = tmp_path / "src"
    write_dataset(src, samples=1, image_size=16, layout="csv")
    listed = {f.relpath: f for f in LocalStorage(src).list()}
    name = next(p for p in listed if p.endswith(".png"))
    f = listed[name]
    job = FileJob(name, str(src / name), f.size, f"{f.version}:{f.inode}", "image")
    outside = tmp_path / "outside.png"
    outside.write_bytes((src / name).read_bytes())
    os.replace(outside, src / name)  # same bytes, another file: a rename over it
    [(relpath, facts)], _ = check_files(str(src), [job], max_pixels=10**8, storage=LocalStorage(src))
    assert relpath == name and facts.error == "missing_file" and "replaced" in facts.detail, facts


def test_an_s3_csv_written_over_after_the_listing_is_not_read(s3):
    """On S3 the listed object is read by its ETag (If-Match): one written over it since is not."""
    import boto3

    from hubpress.settings import Settings
    from hubpress.storage.s3 import S3Storage

    endpoint, bucket = s3
    client = boto3.client("s3", endpoint_url=endpoint)
    client.put_object(Bucket=bucket, Key="src/train.csv", Body=b"image,control,prompt\n")
    storage = S3Storage(f"s3://{bucket}/src", Settings())
    listing = list(storage.list())
    assert storage.read_listed(listing[0]) == b"image,control,prompt\n"
    client.put_object(
        Bucket=bucket, Key="src/train.csv", Body=f"image,control,prompt\na,b,{SECRET}\n".encode()
    )
    with pytest.raises(NotTheListedFile, match="train.csv"):
        read_csv_texts(storage, listing, IntakeOptions())
