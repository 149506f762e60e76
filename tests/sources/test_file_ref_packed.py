"""A FileRef holds a sha256 of 64 lowercase hex digits as its 32 bytes (as validation's FactsByPath
does: hubpress.sources.models.held_sha256), and the version of a local listing's file as the one
int of its mtime, ctime and inode (FileRef.under_stamp): each must read, compare, hash, pickle,
replace and serialise as the dataclass holding the text, which this file keeps as the reference,
for any value given: a digest, upper case, spaces, not hex, short, bytes, None; any int64 stamps.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import sys

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from hubpress.sources import models
from hubpress.sources.facts_by_path import FactsByPath
from hubpress.sources.image_checks import FileFacts
from hubpress.sources.models import FileRef
from hubpress.sources.plain_verdicts import _plainly_fine, plainly_fine_in


@dataclasses.dataclass(frozen=True, slots=True)
class TextShaRef:
    """FileRef as it was: the sha256 as given, in a slot of its own."""

    uri: str
    relpath: str
    size: int
    format: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    version: str | None = None
    decode_pending: bool = False


digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
shas = st.one_of(
    digests,  # most files: held as 32 bytes
    digests.map(str.upper),  # fromhex reads it, but it is not what hex() writes: held as given
    st.just("00 " * 16 + "0" * 16),  # 64 characters fromhex reads as 24 bytes
    st.just("g" * 64),
    st.text("0123456789abcdef", max_size=66),
    st.just(""),
    st.none(),
)


# The edges of a held value: a size of 0, of int64's and uint64's ends, negative, huge; a version
# of a stamp's form (compact or not), an S3 ETag, any text, None.
sizes = st.sampled_from(
    [0, 1, 256, 257, 2**63 - 1, 2**63, 2**64, 2**64 + 1, -1, -(2**63), 10**30]
) | st.integers(-(2**70), 2**70)
versions = (
    st.none()
    | st.sampled_from(
        [
            "1+2:3",
            "0+0:0",
            "-1+-1:0",
            '"d41d8cd98f00b204e9800998ecf8427e"',
            '"9b2cf535f27731c974343645a3985328-2"',
            "",
        ]
    )
    | st.text(max_size=12)
)


@st.composite
def refs(draw) -> TextShaRef:
    relpath = draw(st.sampled_from(["a.png", "train/b.png", "c.jpg"]))
    return TextShaRef(
        draw(st.sampled_from(["/data/", "s3://b/p/"])) + relpath,
        relpath,
        draw(sizes),
        draw(st.none() | st.sampled_from(["png", "jpeg"])),
        draw(shas),
        draw(st.none() | st.integers(0, 9000)),
        draw(st.none() | st.integers(0, 9000)),
        draw(versions),
        draw(st.booleans()),
    )


def _as_ref(text: TextShaRef) -> FileRef:
    return FileRef(*(getattr(text, f.name) for f in dataclasses.fields(text)))


@given(refs())
def test_a_file_ref_reads_as_the_text_sha_dataclass(text):
    ref = _as_ref(text)
    assert [getattr(ref, f.name) for f in dataclasses.fields(FileRef)] == list(dataclasses.astuple(text))
    assert repr(ref) == repr(text).replace("TextShaRef(", "FileRef(", 1)
    assert ref == _as_ref(text) and hash(ref) == hash(_as_ref(text))
    assert pickle.loads(pickle.dumps(ref)) == ref and pickle.loads(pickle.dumps(ref)).sha256 == text.sha256
    assert dataclasses.replace(ref, size=1).sha256 == text.sha256
    assert dataclasses.replace(ref, sha256="ab").sha256 == "ab"
    json = TypeAdapter(FileRef).dump_json(ref)
    assert json == TypeAdapter(TextShaRef).dump_json(text)
    assert TypeAdapter(FileRef).validate_json(json) == ref
    # what the decision makes of a discovered file, given the text or the bytes FactsByPath holds
    bare = FileRef.under(text.uri[: -len(text.relpath)], text.relpath, text.size, text.version)
    for given_sha in (text.sha256, models.held_sha256(text.sha256)):
        if given_sha.__class__ is bytes or given_sha is None or given_sha.__class__ is str:
            kept = bare.with_facts(text.format, given_sha, text.width, text.height, text.decode_pending)
            assert kept == dataclasses.replace(ref, decode_pending=text.decode_pending)
            assert kept.sha256 == text.sha256


def test_a_digest_is_held_as_its_32_bytes():
    sha = "0123456789abcdef" * 4
    ref = FileRef("/data/a.png", "a.png", 3, "png", sha)
    held = models._held_sha(ref)
    assert held == bytes.fromhex(sha) and sys.getsizeof(held) < sys.getsizeof(sha) - 32
    assert models._held_sha(FileRef("/data/a.png", "a.png", 3, "png", sha.upper())) == sha.upper()
    given_bytes = FileRef("/data/a.png", "a.png", 3, "png", b"\x01" * 32)  # not its type: as given
    assert given_bytes.sha256 == b"\x01" * 32


FIELDS = ("png", 8, 8, None, None, None, 64, None, True, None)


@given(st.lists(st.tuples(st.sampled_from(["a.png", "b.png", "c.jpg"]), shas), max_size=6))
def test_facts_held_as_digests_read_as_the_text(puts):
    facts, model = FactsByPath(), {}
    for path, sha in puts:
        facts.put_shared(path, sha, FIELDS)
        model[path] = FileFacts(sha, *FIELDS)
    assert dict(facts) == model and facts == model
    assert {path: facts.get(path) for path in model} == model
    assert pickle.loads(pickle.dumps(facts)) == model
    for path, f in model.items():
        held = facts.held_get(path)
        if f.sha256 is None:  # not a sha256 to hold alone: its FileFacts
            assert held == f
            continue
        assert models.sha256_text(held) == f.sha256
        digest = f.sha256 is not None and re.fullmatch("[0-9a-f]{64}", f.sha256) is not None
        assert held == (bytes.fromhex(f.sha256) if digest else f.sha256)
    # The decision's fast path hands the held bytes to the kept FileRef: what the dict gives.
    fast = plainly_fine_in(facts)
    for path in model:
        ref = FileRef(f"/data/{path}", path, 3)
        assert fast(ref) == _plainly_fine(ref, model)
        if fast(ref) is not None and facts.held_get(path).__class__ is bytes:
            assert models._held_sha(fast(ref)) is facts.held_get(path)  # shared, not copied


int64 = st.integers(-(2**63), 2**63 - 1)
# Around the compact stamp's bounds (mtime in [0, 2**62), ctime - mtime in [-2**61, 2**61), inode
# under 2**56) and the 192-bit form's (an mtime near -2**63 packs below 2**180)
mtimes = int64 | st.sampled_from(
    [0, -1, 2**62 - 1, 2**62, 2**63 - 1, -(2**63), -(2**63) + 2**52, -(2**63) + 2**52 - 1]
)
deltas = st.sampled_from([0, 1, -1, 2**61 - 1, 2**61, -(2**61), -(2**61) - 1]) | int64
inodes = st.sampled_from([0, 1, 2**56 - 1, 2**56, 2**64 - 1]) | st.integers(0, 2**64 - 1)


def stamp_192(mtime: int, ctime: int, inode: int) -> int:
    """The int FileRef.under_stamp holds for a stamp the compact form cannot hold."""
    return ((mtime + 2**63) << 128) | ((ctime + 2**63) << 64) | inode


@given(mtimes, deltas, inodes, st.sampled_from(["/data/", "s3://b/p/"]), shas)
def test_a_stamp_held_as_one_int_reads_as_its_text(mtime, delta, inode, root, sha):
    ctime = min(max(mtime + delta, -(2**63)), 2**63 - 1)  # an int64, as the listing's columns hold it
    text = f"{mtime}+{ctime}:{inode}"
    packed = FileRef.under_stamp(root, "train/a.png", 5, mtime, ctime, inode)
    plain = FileRef.under(root, "train/a.png", 5, text)
    reference = TextShaRef(root + "train/a.png", "train/a.png", 5, version=text)
    assert packed.version == text
    unexpanded = models.held_stamp(packed)
    assert unexpanded.__class__ is int or mtime < -(2**63) + 2**52  # as text only below 1678
    if unexpanded.__class__ is int and unexpanded >= models._COMPACT:  # the 192-bit form
        assert unexpanded == stamp_192(
            mtime, ctime, inode
        )  # as held, compact or not: what stamp_text writes out
    assert (models.stamp_text(unexpanded) if unexpanded.__class__ is int else unexpanded) == text
    assert packed == plain and hash(packed) == hash(plain) and repr(packed) == repr(plain)
    assert repr(packed) == repr(reference).replace("TextShaRef(", "FileRef(", 1)
    assert pickle.loads(pickle.dumps(packed)) == plain
    assert TypeAdapter(FileRef).dump_json(packed) == TypeAdapter(TextShaRef).dump_json(reference)
    assert dataclasses.replace(packed, size=6).version == text
    assert dataclasses.replace(packed, version="etag").version == "etag"
    kept = packed.with_facts("png", sha, 8, 8, True)
    assert kept == plain.with_facts("png", sha, 8, 8, True) and kept.version == text
    assert models._held_version(kept) is models._held_version(packed)  # shared, not remade
    in_place = models.with_facts_in_place(
        FileRef.under_stamp(root, "train/a.png", 5, mtime, ctime, inode), "png", sha, 8, 8, True
    )
    assert in_place == kept and in_place.version == text


def test_a_local_files_stamp_is_held_in_48_bytes():
    """mtime since 1970, ctime near it, a small inode (nearly every file): the compact form, 16
    bytes fewer than the 192-bit one (32 MB of a million samples' plan)."""
    now = 1_733_600_000_123_456_789
    for mtime, ctime, inode in [
        (now, now, 5_000_000),
        (now, now + 10**17, 2**56 - 1),
        (now, now - 10**17, 0),
    ]:
        ref = FileRef.under_stamp("/d/", "a.png", 5, mtime, ctime, inode)
        assert sys.getsizeof(models._held_version(ref)) <= 48
        assert ref.version == f"{mtime}+{ctime}:{inode}"
        assert models.stamp_text(models.held_stamp(ref)) == ref.version
    wide = FileRef.under_stamp("/d/", "a.png", 5, now, now, 2**56)  # an inode of 57 bits: the wide form
    assert models._held_version(wide) == stamp_192(now, now, 2**56)


def test_a_version_given_as_an_int_reads_as_given():
    ref = FileRef("/data/a.png", "a.png", 3, version=7)  # not its type, but kept as given
    assert ref.version == 7 and ref == FileRef("/data/a.png", "a.png", 3, version=7)


def test_the_facts_read_from_the_bytes_are_one_shared_tuple():
    """format, width, height and decode_pending are held as one tuple shared by every file with
    the same four (nearly every file of a dataset): 80 bytes a FileRef where nine slots were 104."""
    listed = [FileRef.under_stamp("/d/", f"{n}.png", 5, 1, 2, n) for n in range(3)]
    kept = [ref.with_facts("png", "ab" * 32, 8, 6, True) for ref in listed]
    assert all(sys.getsizeof(ref) <= 80 for ref in listed + kept)
    assert len({id(models._held_facts(ref)) for ref in listed}) == 1
    assert len({id(models._held_facts(ref)) for ref in kept}) == 1
    assert (kept[0].format, kept[0].width, kept[0].height, kept[0].decode_pending) == ("png", 8, 6, True)


@given(
    st.sampled_from([None, "png", 1]),
    st.sampled_from([None, 8, True, 8.0, -0.0]),
    st.sampled_from([None, 1, True]),
    st.sampled_from([False, True, 0, 1, None]),
)
def test_shared_facts_read_as_given_in_their_own_types(fmt, width, height, pending):
    """Values equal but of other types (True and 1, 0.0 and -0.0) are not shared with each other:
    each FileRef reads back what it was given, as the dataclass holding them in slots does."""
    made = [FileRef("/d/a.png", "a.png", 3, fmt, None, width, height, None, pending) for _ in range(2)]
    made.append(FileRef("/d/b.png", "b.png", 3, "png", None, 1, 1, None, 1))  # shares with no one above
    made.append(FileRef("/d/c.png", "c.png", 3, "png", None, True, True, None, True))
    reference = TextShaRef("/d/a.png", "a.png", 3, fmt, None, width, height, None, pending)
    for ref in made[:2]:
        assert repr(ref) == repr(reference).replace("TextShaRef(", "FileRef(", 1)
        assert [type(getattr(ref, f)) for f in ("format", "width", "height", "decode_pending")] == [
            type(fmt),
            type(width),
            type(height),
            type(pending),
        ]
    assert repr(made[2]).endswith("width=1, height=1, version=None, decode_pending=1)")
    assert repr(made[3]).endswith("width=True, height=True, version=None, decode_pending=True)")


def test_equal_facts_of_other_values_are_not_shared():
    zero = FileRef("/d/a.png", "a.png", 3, "png", None, 0.0, 8, None, False)
    negative = FileRef("/d/a.png", "a.png", 3, "png", None, -0.0, 8, None, False)
    assert (repr(zero.width), repr(negative.width)) == ("0.0", "-0.0")


def test_a_file_ref_without_facts_holds_discovery_s_tuple_however_it_was_made():
    """A FileRef nothing was read of holds the one NO_FACTS tuple discovery's hold, whether made
    by discovery, the constructor, a pickle, `dataclasses.replace` or the JSON, and after the
    table of shared tuples was emptied (a long-lived process seeing many distinct facts)."""
    discovered = FileRef.under_stamp("/d/", "a.png", 5, 1, 2, 3)
    made = [
        FileRef("/d/a.png", "a.png", 5),
        pickle.loads(pickle.dumps(discovered)),
        dataclasses.replace(discovered),
        TypeAdapter(FileRef).validate_json(TypeAdapter(FileRef).dump_json(discovered)),
    ]
    for n in range(1100):  # more distinct fours than the table keeps: it is emptied once
        FileRef("/d/b.png", "b.png", 5, "png", None, n, 1)
    made.append(FileRef("/d/a.png", "a.png", 5))
    assert models._held_facts(discovered) is models.NO_FACTS
    assert all(models._held_facts(ref) is models.NO_FACTS for ref in made)
