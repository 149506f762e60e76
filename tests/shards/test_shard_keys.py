"""A shard's key (ShardPlan.key) is a function of its samples' content, the options that shape its
bytes and the shard format: the same in every process and on every machine (it names no path and
no process state), and different when any of those change. Property tests with hypothesis."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import hubpress.shards.shards as shards_module
from hubpress.shards.keys import json_encoder
from hubpress.shards.shards import plan_shards
from hubpress.sources.models import FileRef, Sample

ROOT = Path(__file__).resolve().parents[2]

_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
_digest = st.binary(min_size=1, max_size=16).map(lambda b: hashlib.sha256(b).hexdigest())


@st.composite
def _ref(draw, root: str) -> FileRef:
    name = draw(_ids)
    return FileRef(
        uri=f"{root}/{name}.png",  # where the file is: no part of the key
        relpath=f"train/{name}.png",
        size=draw(st.integers(1, 5_000_000)),
        format=draw(st.sampled_from(["png", "jpeg", "webp"])),
        sha256=draw(_digest),
    )


@st.composite
def samples(draw, root: str = "/data/a"):
    ids = draw(st.lists(_ids, min_size=1, max_size=12, unique=True))
    return [
        Sample(
            id=sample_id,
            split="train",
            prompt=draw(st.text(max_size=20)),
            controls=draw(st.lists(_ref(root), min_size=1, max_size=2)),
            mask=draw(st.none() | _ref(root)),
            target=draw(st.none() | _ref(root)),
        )
        for sample_id in ids
    ]


def keys(batch: list[Sample], **options) -> list[str]:
    return [plan.key for plan in plan_shards("train", batch, "2MB", **options)]


def examples() -> list[list[Sample]]:
    """A fixed sequence of generated datasets. Derandomized, but hypothesis also draws constants
    from the modules a process has imported, so another process may generate other examples: the
    child gets these very samples, as JSON."""
    found: list[list[Sample]] = []

    @settings(derandomize=True, database=None, max_examples=40)
    @given(samples())
    def collect(batch):
        found.append(batch)

    collect()
    return found


def _sample_from(data: dict) -> Sample:
    def ref(value):
        return None if value is None else FileRef(**value)

    return Sample(
        **{
            **data,
            "controls": [ref(r) for r in data["controls"]],
            "mask": ref(data["mask"]),
            "target": ref(data["target"]),
            "prompt_file": ref(data["prompt_file"]),
        }
    )


def keys_of_json(text: str) -> list[list[str]]:
    return [keys([_sample_from(s) for s in batch]) for batch in json.loads(text)]


def test_keys_are_the_same_in_another_process_and_another_hash_seed():
    batches = examples()
    here = [keys(batch) for batch in batches]
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from tests.shards.test_shard_keys import keys_of_json; "
            "print(json.dumps(keys_of_json(sys.stdin.read())))",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)},
        input=json.dumps([[dataclasses.asdict(s) for s in batch] for batch in batches]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(child.stdout.strip().splitlines()[-1]) == here
    assert len(here) == 40 and all(len(k) == 64 for batch in here for k in batch)


@settings(max_examples=60, deadline=None)
@given(samples(), samples(root="/elsewhere/b"))
def test_keys_do_not_depend_on_where_the_files_are(batch, _other):
    moved = [
        dataclasses.replace(
            s,
            controls=[dataclasses.replace(r, uri="/mnt/copy/" + r.relpath) for r in s.controls],
        )
        for s in batch
    ]
    assert keys(moved) == keys(batch)


@settings(max_examples=60, deadline=None)
@given(samples(), st.data())
def test_a_changed_image_changes_its_shard_key_and_only_its_shard(batch, data):
    index = data.draw(st.integers(0, len(batch) - 1))
    changed_ref = dataclasses.replace(
        batch[index].controls[0], sha256=hashlib.sha256(b"other bytes").hexdigest()
    )
    if changed_ref.sha256 == batch[index].controls[0].sha256:
        return
    changed = list(batch)
    changed[index] = dataclasses.replace(batch[index], controls=[changed_ref, *batch[index].controls[1:]])
    before = plan_shards("train", batch, "2MB")
    after = plan_shards("train", changed, "2MB")
    # Sizes are unchanged, so the boundaries are too: exactly the shard holding the sample changes.
    assert [len(p.samples) for p in before] == [len(p.samples) for p in after]
    differs = [b.key != a.key for b, a in zip(before, after, strict=True)]
    holder = next(i for i, p in enumerate(after) if any(s.id == batch[index].id for s in p.samples))
    assert differs == [i == holder for i in range(len(before))]


@settings(max_examples=40, deadline=None)
@given(samples(), st.sampled_from([("row_group_rows", 7), ("row_group_bytes", 123_456)]))
def test_an_option_that_shapes_bytes_changes_every_key(batch, option):
    name, value = option
    assert set(keys(batch, **{name: value})).isdisjoint(keys(batch))


@settings(max_examples=20, deadline=None)
@given(samples())
def test_the_shard_format_is_part_of_every_key(batch):
    before = keys(batch)
    saved = shards_module.SHARD_FORMAT
    shards_module.SHARD_FORMAT = saved + 1
    try:
        after = keys(batch)
    finally:
        shards_module.SHARD_FORMAT = saved
    assert set(after).isdisjoint(before)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=12,
    ),
    st.booleans(),
    st.booleans(),
)
def test_the_made_once_encoder_writes_what_json_dumps_writes(value, ensure_ascii, sort_keys):
    """json_encoder (the C encoder made once, for keys and digests) gives json.dumps's text."""
    encode = json_encoder(ensure_ascii=ensure_ascii, sort_keys=sort_keys, default=str)
    assert encode(value) == json.dumps(value, ensure_ascii=ensure_ascii, sort_keys=sort_keys, default=str)


def _content(ref: FileRef) -> bytes:
    """Stand-in bytes of an image: a function of its sha256 and size, as a file's are."""
    return (bytes.fromhex(ref.sha256) * (ref.size // 32 + 1))[: ref.size]


@st.composite
def _named_ref(draw) -> FileRef:
    """An image under one of the names a tree gives the same sample's file: the id's own name in
    any spelling of its extension (a.png, a.PNG, a.jpeg), a numbered or mask name, another name."""
    stem = draw(st.sampled_from(["s1", "s1_control_1", "s1_mask", "other"]))
    ext = draw(st.sampled_from(["png", "PNG", "Png", "jpg", "jpeg", "JPG"]))
    return FileRef(
        uri=f"/src/{draw(st.sampled_from(['a', 'b/c']))}/{stem}.{ext}",
        relpath=f"train/{stem}.{ext}",
        size=draw(st.sampled_from([40, 64])),
        format=draw(st.sampled_from(["png", "jpeg"])),
        sha256=draw(st.sampled_from([hashlib.sha256(b).hexdigest() for b in (b"x", b"y")])),
    )


@st.composite
def _one_sample(draw) -> Sample:
    return Sample(
        id="s1",
        split="train",
        prompt="p",
        controls=draw(st.lists(_named_ref(), min_size=1, max_size=2)),
        mask=draw(st.none() | _named_ref()),
        target=draw(st.none() | _named_ref()),
    )


@settings(max_examples=150, deadline=None)
@given(_one_sample(), _one_sample())
def test_two_shards_of_one_key_hold_the_same_bytes(first, second):
    """A key names the bytes: a shard whose key the target or the staging holds is not built
    again, so two plans of one key must write the same file. An image's `path` field holds its
    file's name (editing.image_file_name), so a file renamed (a.png -> a.PNG, a.jpeg -> a.jpg)
    with the same bytes writes another shard: its key must differ, or the published shard keeps
    the old name and a first publish of the same source writes other bytes under the same name."""
    import tempfile

    from hubpress.shards.shards import write_shard

    (plan_a,) = plan_shards("train", [first], "2MB")
    (plan_b,) = plan_shards("train", [second], "2MB")
    if plan_a.key != plan_b.key:
        return
    with tempfile.TemporaryDirectory() as tmp:
        a = write_shard(plan_a, Path(tmp) / "a.parquet", _content)
        b = write_shard(plan_b, Path(tmp) / "b.parquet", _content)
        assert a.sha256 == b.sha256, (first, second)


def _ref_fact_by_the_name(ref: FileRef, usual_stem: str) -> list:
    """What a shard's key holds for an image, asked of editing.image_file_name for every file (the
    key's rule as written; shards._ref_fact asks the relpath first)."""
    from hubpress.shards.editing import FORMAT_EXTENSIONS, file_extension, image_file_name

    identity = ref.sha256 or f"{ref.uri}|{ref.size}|{ref.version}"
    fmt = ref.format or file_extension(ref.relpath)
    name = image_file_name(ref)
    if name == f"{usual_stem}.{FORMAT_EXTENSIONS.get(fmt.lower(), fmt)}":
        return [identity, fmt, ref.size]
    return [identity, fmt, ref.size, name]


@settings(max_examples=400)
@given(
    folder=st.sampled_from(["", "train/", "a\\b\\", "train/x.png/", "s1/"]),
    stem=st.sampled_from(["s1", "S1", "xs1", "s1_mask", "s1_control_1", "", "s1.png"]),
    ext=st.sampled_from(["png", "PNG", "jpg", "jpeg", "JPG", "webp", "tif", "", "bin"]),
    fmt=st.sampled_from([None, "png", "jpeg", "jpg", "mpo", "webp", "tiff", "avif"]),
    usual_stem=st.sampled_from(["s1", "s1_mask", "s1_control_1", "", "S1"]),
    sha=st.sampled_from([None, "ab" * 32]),
)
def test_the_keys_quick_look_at_the_name_agrees_with_image_file_name(folder, stem, ext, fmt, usual_stem, sha):
    relpath = f"{folder}{stem}.{ext}" if ext else f"{folder}{stem}"
    ref = FileRef(f"/data/{relpath}", relpath, 10, fmt, sha, 8, 8, "1+2:3")
    assert shards_module._ref_fact(ref, usual_stem) == _ref_fact_by_the_name(ref, usual_stem)
