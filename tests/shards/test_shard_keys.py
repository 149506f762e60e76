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

from hypothesis import example, given, settings
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


# --- the key's rows written directly (shards._row_text, _plan_key) -----------------------------

_any_text = st.text(max_size=8) | st.sampled_from(["s1", 'q"uote\\', "é猫", "tab\t\x7f\x00", "s1_mask"])


@st.composite
def _any_ref(draw) -> FileRef:
    """A file as discovery and the decision may give it: validated or not, a format or none (or
    in another case), named the usual way or not, under any folder (backslashes too)."""
    stem = draw(st.sampled_from(["s1", "s1_control_1", "s1_mask", "S1", "x"]) | _any_text)
    ext = draw(st.sampled_from(["png", "PNG", "jpg", "jpeg", "tif", "", "bin"]))
    relpath = draw(st.sampled_from(["", "train/", "a\\b\\", "t/x.png/"])) + (f"{stem}.{ext}" if ext else stem)
    return FileRef(
        uri=f"/src/{relpath}",
        relpath=relpath,
        size=draw(st.integers(0, 10**12) | st.sampled_from([True, 7.5])),
        format=draw(st.sampled_from([None, "", "png", "PNG", "jpeg", "mpo", "tiff", "avif", 'we"ird'])),
        sha256=draw(st.sampled_from([None, "", "ab" * 32, "AB" * 32, "abc"]) | _digest),
        version=draw(st.sampled_from([None, "1+2:3"])),
    )


@st.composite
def _any_sample(draw) -> Sample:
    return Sample(
        id=draw(st.sampled_from(["s1", "S1"]) | _any_text),
        split="train",
        prompt=draw(st.none() | _any_text),
        controls=draw(st.lists(_any_ref(), max_size=3)),
        mask=draw(st.none() | _any_ref()),
        target=draw(st.none() | _any_ref()),
    )


def _row_as_written(s: Sample) -> list:
    """A sample's row in its shard's key, as the key's rule writes it."""
    fact = shards_module._ref_fact
    return [
        s.id,
        s.prompt,
        [fact(r, s.id if i == 0 else f"{s.id}_control_{i}") for i, r in enumerate(s.controls)],
        fact(s.mask, f"{s.id}_mask") if s.mask else None,
        fact(s.target, s.id) if s.target else None,
    ]


@st.composite
def _nearly_plain_sample(draw) -> Sample:
    """One control and a target, validated and named <id>.<ext> in the format's extension (the
    quick case), each with at most one thing drawn otherwise: its name, folder, format, digest or
    size."""
    from hubpress.shards.editing import FORMAT_EXTENSIONS

    sid = draw(st.sampled_from(["s1", "S1", 'q"1', "é猫", "a\\b", "s1.png"]))
    fmt = draw(st.sampled_from(["png", "jpeg", "mpo", "tiff", "PNG", "webp"]))

    def ref() -> FileRef:
        plain = {
            "folder": draw(st.sampled_from(["train/target/", "", "a\\"])),
            "stem": sid,
            "ext": FORMAT_EXTENSIONS.get(fmt.lower(), fmt),
            "format": fmt,
            "sha256": draw(_digest),
            "size": draw(st.integers(0, 10**6)),
        }
        twist = draw(st.sampled_from([None, None, *plain]))
        if twist is not None:
            plain[twist] = draw(
                {
                    "folder": st.sampled_from(["x", "train/x", "s"]),
                    "stem": st.sampled_from([sid + "x", "s1", "x" + sid]),
                    "ext": st.sampled_from(["png", "jpg", "jpeg", "PNG", "tif"]),
                    "format": st.sampled_from([None, "", "png", "jpeg"]),
                    "sha256": st.sampled_from([None, "", "AB" * 32, "abc"]),
                    "size": st.sampled_from([True, 2.0, -1]),
                }[twist]
            )
        return FileRef(
            uri="/src/x",
            relpath=f"{plain['folder']}{plain['stem']}.{plain['ext']}",
            size=plain["size"],
            format=plain["format"],
            sha256=plain["sha256"],
        )

    return Sample(sid, "train", draw(st.text(max_size=6) | st.none()), [ref()], None, ref())


def _pair(control: dict, target: dict, sid: str = "s1", prompt: str | None = "p") -> Sample:
    def ref(changed: dict) -> FileRef:
        fields = {"relpath": f"train/{sid}.png", "size": 9, "format": "png", "sha256": "ab" * 32, **changed}
        return FileRef(uri="/src/x", **fields)

    return Sample(sid, "train", prompt, [ref(control)], None, ref(target))


@settings(max_examples=500, deadline=None)
@given(_any_sample() | _nearly_plain_sample())
@example(_pair({}, {}))  # the quick case itself
@example(_pair({"format": "mpo", "relpath": "train/s1.jpg"}, {"format": "jpeg", "relpath": "train/s1.jpg"}))
@example(_pair({"format": "jpeg"}, {}))  # a control of another format under the target's usual name
@example(_pair({}, {"relpath": "trains1.png"}))  # the usual name without a separator before it
@example(_pair({"relpath": "a\\s1.png"}, {"relpath": "s1.png"}))
@example(_pair({"size": True}, {}))
@example(_pair({}, {"sha256": "AB" * 32}))
@example(_pair({"sha256": None}, {}))  # never validated: the listing's facts stand for its content
@example(_pair({}, {}, sid='q"1', prompt=None))
def test_a_rows_text_written_directly_is_its_json(sample):
    """shards._row_text writes the text json.dumps(row, ensure_ascii=False) gives (keys.encode_row),
    for any id, prompt and images: the quick case (a validated file named the usual way) and
    every other one."""
    from hubpress.shards.keys import encode_row

    assert shards_module._row_text(sample) == encode_row(_row_as_written(sample))
    assert encode_row(_row_as_written(sample)) == json.dumps(_row_as_written(sample), ensure_ascii=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(_any_sample(), max_size=12), st.integers(1, 5))
def test_a_plans_key_is_shard_key_of_its_rows(batch, rows_per_update):
    """_plan_key hashes its rows' text a few thousand at a time: the key keys.shard_key gives of
    the header and the rows, whatever the batch (checked at small batches too)."""
    from hubpress.shards.keys import shard_key

    header = [shards_module.SHARD_FORMAT, "train", 100, 1000]
    expected = shard_key(header, [_row_as_written(s) for s in batch])
    saved = shards_module._ROWS_PER_UPDATE
    shards_module._ROWS_PER_UPDATE = rows_per_update
    try:
        assert shards_module._plan_key("train", batch, 100, 1000) == expected
    finally:
        shards_module._ROWS_PER_UPDATE = saved
    assert shards_module._plan_key("train", batch, 100, 1000) == expected
