"""A FileRef holds its source root and relpath, not a whole URI (hubpress.sources.models): it
must behave exactly as the dataclass that held the whole URI, which this file keeps as the
reference, for any URI and relpath, whether or not the URI ends in the relpath."""

from __future__ import annotations

import dataclasses
import json
import pickle

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from hubpress.sources import models
from hubpress.sources.discovery import discover
from hubpress.sources.models import FileRef, IntakeReport, Sample, SplitManifest
from hubpress.storage.files import ListedFile


@dataclasses.dataclass(frozen=True, slots=True)
class WholeUriRef:
    """FileRef as it was before it held roots: the whole URI in a slot of its own."""

    uri: str
    relpath: str
    size: int
    format: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    version: str | None = None
    decode_pending: bool = False


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
relpaths = st.lists(names.filter(bool), min_size=1, max_size=3).map("/".join)
roots = st.sampled_from(["/data/src/", "s3://bucket/prefix/", "/", "", "C:/x/", "/data/src/a"])


@st.composite
def refs(draw) -> WholeUriRef:
    relpath = draw(relpaths)
    # Mostly root + relpath, as discovery makes them; sometimes a URI of its own (an S3 key
    # under another name, a test's file), which FileRef keeps whole.
    uri = draw(st.one_of(roots.map(lambda root: root + relpath), names))
    maybe_int = st.none() | st.integers(0, 70_000)
    return WholeUriRef(
        uri,
        relpath,
        draw(st.integers(0, 2**40)),
        draw(st.none() | st.sampled_from(["png", "jpeg", "webp"])),
        draw(st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)),
        draw(maybe_int),
        draw(maybe_int),
        draw(st.none() | names),
        draw(st.booleans()),
    )


def _as_ref(whole: WholeUriRef) -> FileRef:
    return FileRef(*(getattr(whole, f.name) for f in dataclasses.fields(whole)))


@given(refs())
def test_a_file_ref_reads_as_the_whole_uri_dataclass(whole):
    ref = _as_ref(whole)
    assert [getattr(ref, f.name) for f in dataclasses.fields(FileRef)] == list(dataclasses.astuple(whole))
    assert repr(ref) == repr(whole).replace("WholeUriRef(", "FileRef(", 1)
    assert ref == _as_ref(whole) and hash(ref) == hash(_as_ref(whole))
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert dataclasses.replace(ref, sha256="ab").uri == whole.uri


@given(refs())
def test_the_json_is_the_whole_uri_dataclass_json(whole):
    ref = _as_ref(whole)
    text = TypeAdapter(FileRef).dump_json(ref)
    assert text == TypeAdapter(WholeUriRef).dump_json(whole)
    assert TypeAdapter(FileRef).validate_json(text) == ref
    # Inside a report, as `IntakeReport.to_json` writes it (and a stage's shard plans).
    report = IntakeReport("src", "csv", {"train": SplitManifest("train", [Sample("a", "train", "p", [ref])])})
    data = json.loads(report.to_json())
    assert data["splits"]["train"]["samples"][0]["controls"] == [dataclasses.asdict(whole)]
    assert IntakeReport.from_json(report.to_json()) == report


@given(refs(), st.sampled_from(["png", "jpeg", None]), st.booleans())
def test_the_decision_s_copy_is_the_file_with_its_facts(whole, fmt, pending):
    ref = _as_ref(whole)
    checked = ref.with_facts(fmt, "cd" * 32, 8, 6, pending)
    assert checked == dataclasses.replace(
        ref, format=fmt, sha256="cd" * 32, width=8, height=6, decode_pending=pending
    )
    assert checked.uri == whole.uri


def test_discovered_files_share_their_root(tmp_path):
    root = tmp_path / "src"
    for kind in ("target", "control"):
        (root / "train" / kind).mkdir(parents=True)
    listing = [ListedFile("train.csv", 10, "1")] + [
        ListedFile(f"train/{kind}/s{n}.png", 5, "2") for n in range(3) for kind in ("target", "control")
    ]
    rows = "".join(f"train/target/s{n}.png,train/control/s{n}.png,p{n}\n" for n in range(3))
    found = discover(
        listing, root=str(root), layout="csv", csv_texts={"train": "image,control,prompt\n" + rows}
    )
    files = [ref for s in found.samples["train"] for ref in s.images()]
    assert [ref.uri for ref in files] == [f"{root}/{ref.relpath}" for ref in files]
    held = [models._held_root(ref) for ref in files]  # what the slot named `uri` holds
    assert held[0] == f"{root}/" and all(r is held[0] for r in held)  # one string for them all
