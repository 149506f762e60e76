"""Typed values that describe dataset intake and publishing.

Decisions are pure functions over these values; I/O happens at the edges (discovery reads a
listing, validation reads bytes, the hub module talks HTTP). Every value round-trips through
JSON with `to_json` / `from_json` (pydantic's TypeAdapter over plain dataclasses, which keeps
construction cheap on the 100,000-sample hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import TypeAdapter

Severity = Literal["error", "warning"]
Layout = Literal["folder", "csv"]

# Stable problem kinds used in reports and tests (see the intake issue).
ERROR_KINDS = frozenset(
    {
        "missing_control",
        "missing_target",
        "missing_prompt",
        "prompt_not_utf8",
        "undecodable_image",
        "unsupported_format",
        "image_too_large",
        "mask_size_mismatch",
        "duplicate_id",
        "path_outside_root",
        "ambiguous_file",
        "missing_file",
        "missing_cell",
        "prompt_undecodable",
        "name_not_utf8",
    }
)
WARNING_KINDS = frozenset(
    {
        "empty_prompt",  # kept, as qflux keeps it: an unconditional example
        "orphan_control",
        "orphan_mask",
        "orphan_target",
        "extension_mismatch",
        "file_resolved",
        "unknown_column",
        "ignored_file",
        "symlink_not_followed",  # a symlink that loops, dangles or leads a folder outside the root
        "not_regular_file",  # a device, FIFO or socket (or a symlink to one, e.g. /dev/zero): never read
        "image_rotated",  # EXIF orientation: sizes are compared as a trainer sees them
        "multi_frame_image",  # animated or multi-page: a trainer sees the first frame only
    }
)


def severity_of(kind: str) -> Severity:
    """Warnings are the kinds listed in WARNING_KINDS; every other kind stops a sample."""
    return "warning" if kind in WARNING_KINDS else "error"


@dataclass(frozen=True)  # slotted by hand, below: __slots__
class FileRef:
    """One source file. `uri` is an absolute local path or s3://bucket/key.

    Held as the source root and `relpath`, not as a whole URI: the slot named `uri` holds the
    root (`uri == root + relpath`), one string shared by every file under that root, and the
    `uri` attribute is made from the two when asked. A whole URI per file was about 110 bytes,
    220 MB of a million samples' plan (docs/performance.md, "the report's memory"). The
    constructor, equality, hashing, repr, pickling, `dataclasses.replace` and the JSON are those
    of a FileRef holding the whole URI (tests/sources/test_file_ref_roots.py).

    A sha256 of 64 lowercase hex digits (every file's, once validated) is held as its 32 bytes
    and written out when read: 72 bytes where the text was 112, 80 MB of a million samples' plan
    (docs/performance.md, "Planning (thirteenth session)"); any other value is held as given.
    So is the version of a local listing's file made by `under_stamp`, "mtime+ctime:inode", as
    one int of the three numbers: 48 bytes where the text was 96, another 96 MB. Both are read,
    compared, hashed, pickled, replaced and serialised as the text
    (tests/sources/test_file_ref_packed.py).

    What validation found in the bytes (format, width, height, decode_pending) is held as one
    tuple, shared by every file whose four values are the same (nearly every file of a dataset,
    and every file before the decision): 80 bytes a FileRef where nine slots were 104, 48 MB of a
    million samples' plan (docs/performance.md, "Planning (fifteenth session"). Each reads as its
    field through a property (tests/sources/test_file_ref_packed.py)."""

    # The slot `uri` holds the root; `_sha256`, `_version` and `_facts` what the properties
    # sha256, version and (format, width, height, decode_pending) read (not the fields' names:
    # a slot may not share its name with a field's default).
    __slots__ = ("uri", "relpath", "size", "_sha256", "_version", "_facts")

    uri: str
    relpath: str  # POSIX path relative to the source root, as listed
    size: int
    format: str | None = None  # true format from the bytes: png, jpeg, webp, bmp, tiff, gif
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    version: str | None = None  # mtime_ns locally, ETag on S3: the cache key together with size
    # Validation checked only the header: the build decodes the pixels when it reads the bytes.
    decode_pending: bool = False

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    @classmethod
    def under_stamp(cls, root: str, relpath: str, size: int, mtime: int, ctime: int, inode: int) -> FileRef:
        """FileRef.under(root, relpath, size, f"{mtime}+{ctime}:{inode}"), the version a local
        listing's file has (hubpress.storage.listing), held as one int and written out when read:
        48 bytes where the text was 96, 96 MB of a million samples' plan. mtime and ctime as
        int64 columns hold them, inode in [0, 2**64).

        Nearly every file's three numbers (mtime since 1970 and before 2116, ctime within 73
        years of it, an inode under 2**56) are held in 180 bits, an int of 48 bytes (_COMPACT:
        16 fewer than the 192 bits of the three as they are, 32 MB of a million samples' plan);
        any other stamp in those 192 bits, 2**63 added to mtime and ctime, an int above
        2**180; a stamp whose 192 bits would not be (an mtime before 1678) as its text."""
        ref = _new_ref(cls)
        delta = ctime - mtime + _DELTA_BIAS
        if 0 <= mtime < _TWO62 and 0 <= delta < _TWO62 and 0 <= inode < _TWO56:
            held: Any = (mtime << 118) | (delta << 56) | inode
        else:
            held = ((mtime + _STAMP_BIAS) << 128) | ((ctime + _STAMP_BIAS) << 64) | inode
            if held < _COMPACT:  # would read as a compact stamp: held as the text instead
                held = f"{mtime}+{ctime}:{inode}"
        _bare_init(ref, root, relpath, size, held)
        return ref

    @classmethod
    def under(cls, root: str, relpath: str, size: int, version: str | None) -> FileRef:
        """A listed file under `root` (the URI prefix, ending in "/"): what discovery makes, a
        million times under one root, so the root is passed once and shared, never split again."""
        ref = _new_ref(cls)
        _bare_init(ref, root, relpath, size, version)
        return ref

    def with_facts(
        self,
        format: str | None,
        sha256: str | None,
        width: int | None,
        height: int | None,
        decode_pending: bool,
    ) -> FileRef:
        """This file with what validation found in its bytes (the decision's kept FileRef).
        `sha256` may be given as the 32 bytes of its digest, as validation's FactsByPath holds
        it (held as they are, shared with the facts); else as the text."""
        ref = _new_ref(FileRef)
        _raw_init(
            ref, _held_root(self), self.relpath, self.size, format,
            sha256 if sha256.__class__ is bytes else held_sha256(sha256), width, height,
            _held_version(self), decode_pending,
        )  # fmt: skip
        return ref

    def __reduce__(self) -> tuple[Any, ...]:
        return (FileRef, tuple(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """The JSON of the dataclass holding the whole URI: the same keys, in the same order."""
        from pydantic_core import core_schema as cs

        def field(schema: Any, required: bool) -> Any:
            return cs.typed_dict_field(schema, required=required)

        def maybe(schema: Any) -> Any:
            return field(cs.nullable_schema(schema), False)

        shape = cs.typed_dict_schema(
            {
                "uri": field(cs.str_schema(), True),
                "relpath": field(cs.str_schema(), True),
                "size": field(cs.int_schema(), True),
                "format": maybe(cs.str_schema()),
                "sha256": maybe(cs.str_schema()),
                "width": maybe(cs.int_schema()),
                "height": maybe(cs.int_schema()),
                "version": maybe(cs.str_schema()),
                "decode_pending": field(cs.bool_schema(), False),
            }
        )
        from_dict = cs.no_info_after_validator_function(lambda values: cls(**values), shape)
        return cs.json_or_python_schema(
            json_schema=from_dict,
            python_schema=cs.union_schema([cs.is_instance_schema(cls), from_dict]),
            serialization=cs.plain_serializer_function_ser_schema(_ref_fields, when_used="always"),
        )


class _WholeUri:
    """The root of a FileRef whose URI does not end in its relpath (a test's file, an S3 key
    under another name): the whole URI, kept as it was given. Equal by that URI, so values that
    hold one (validation's FileJob, a tuple) compare as if they held the URI itself."""

    __slots__ = ("uri",)

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _WholeUri) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)


_root_slot = FileRef.__dict__["uri"]  # the slot's own descriptor: it holds the root
_held_sha = FileRef.__dict__["_sha256"].__get__  # the slot: 32 bytes, or the value as given
_set_held_sha = FileRef.__dict__["_sha256"].__set__  # (with_facts_in_place)
_held_version = FileRef.__dict__["_version"].__get__  # the slot: a packed stamp, or as given
_held_facts = FileRef.__dict__["_facts"].__get__  # (format, width, height, decode_pending)
_set_facts = FileRef.__dict__["_facts"].__set__
_STAMP_BIAS = 1 << 63  # int64 mtime and ctime, made non-negative to be packed
_LOW64 = (1 << 64) - 1
# under_stamp's compact stamp: mtime in [0, 2**62) << 118 | ctime - mtime + 2**61 in [0, 2**62)
# << 56 | inode in [0, 2**56); below _COMPACT, where no stamp of the 192-bit form lies.
_COMPACT = 1 << 180
_TWO62, _TWO56, _DELTA_BIAS = 1 << 62, 1 << 56, 1 << 61
_LOW62, _LOW56 = _TWO62 - 1, _TWO56 - 1
_held_root = _root_slot.__get__  # bound once: `uri` is read for every file validation checks
_set_root = _root_slot.__set__
_set_relpath = FileRef.__dict__["relpath"].__set__
_set_size = FileRef.__dict__["size"].__set__
_set_version = FileRef.__dict__["_version"].__set__
_new_ref = object.__new__
NO_FACTS = (None, None, None, False)  # a FileRef's (format, width, height, decode_pending) unread
# shared_facts' key of NO_FACTS (the values and their types): every FileRef nothing was read of
# holds that one tuple, however it was made (discovery's, the constructor's, a pickle's).
_NO_FACTS_KEY = (NO_FACTS, type(None), type(None), type(None), bool)
_SHARED_FACTS: dict[tuple[Any, ...], tuple[Any, ...]] = {_NO_FACTS_KEY: NO_FACTS}
_PLAIN = frozenset({str, int, bool, type(None)})


def shared_facts(format: Any, width: Any, height: Any, decode_pending: Any) -> tuple[Any, ...]:
    """The tuple a FileRef holds for these four values: one per distinct four (a dataset has a
    handful), each value of exactly the type it was given in (True and 1 are not shared)."""
    facts = (format, width, height, decode_pending)
    if (
        format.__class__ not in _PLAIN
        or width.__class__ not in _PLAIN
        or height.__class__ not in _PLAIN
        or decode_pending.__class__ not in _PLAIN
    ):
        return facts  # a float, a subclass: its own, as given
    # Keyed by the values and their types: (1, True) and (True, 1) are equal tuples.
    key = (facts, format.__class__, width.__class__, height.__class__, decode_pending.__class__)
    held = _SHARED_FACTS.get(key)  # type: ignore[call-overload]
    if held is None:
        if len(_SHARED_FACTS) >= 1024:  # bounded, whatever a long-lived process sees
            _SHARED_FACTS.clear()
            _SHARED_FACTS[_NO_FACTS_KEY] = NO_FACTS
        held = _SHARED_FACTS[key] = facts  # type: ignore[index]
    return held


def _raw_init(
    self: FileRef, root: Any, relpath: str, size: int, format: Any, sha256: Any, width: Any,
    height: Any, version: Any, decode_pending: Any,
) -> None:  # fmt: skip
    """Sets each slot as given (the root into `uri`'s, the held sha256 and version)."""
    _set_root(self, root)
    _set_relpath(self, relpath)
    _set_size(self, size)
    _set_held_sha(self, sha256)
    _set_version(self, version)
    _set_facts(self, shared_facts(format, width, height, decode_pending))


def _bare_init(self: FileRef, root: Any, relpath: str, size: int, version: Any) -> None:
    """_raw_init of a file nothing was read of (discovery's): no facts to share out."""
    _set_root(self, root)
    _set_relpath(self, relpath)
    _set_size(self, size)
    _set_held_sha(self, None)
    _set_version(self, version)
    _set_facts(self, NO_FACTS)


_ROOTS: dict[str, str] = {}  # each root once, however many FileRefs were built from whole URIs


def _root_of(uri: str, relpath: str) -> str | _WholeUri:
    if not uri.endswith(relpath):
        return _WholeUri(uri)
    root = uri[: len(uri) - len(relpath)]
    if len(_ROOTS) >= 4096:  # a long-lived process sees many sources: keep the sharing bounded
        _ROOTS.clear()
    return _ROOTS.setdefault(root, root)


class _AsGiven:
    """A slot's value given in the type the slot holds its packed form in (a sha256 as bytes, a
    version as an int: not a FileRef's types, but kept as given): bytes in the sha256 slot mean
    a digest to be written out as hex, an int in the version slot a packed stamp."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value


def held_sha256(sha256: Any) -> Any:
    """What a FileRef (and validation's FactsByPath) holds for a sha256: 64 lowercase hex digits
    as their 32 bytes; anything else as given (bytes wrapped, so as not to be read as a digest)."""
    if sha256.__class__ is str and len(sha256) == 64:
        try:
            digest = bytes.fromhex(sha256)
        except ValueError:
            return sha256
        return digest if digest.hex() == sha256 else sha256  # upper case or spaces: as given
    if isinstance(sha256, bytes):
        return _AsGiven(sha256)
    return sha256


def sha256_text(held: Any) -> Any:
    """The sha256 that `held_sha256` held `held` for."""
    if held.__class__ is bytes:
        return held.hex()
    return held.value if held.__class__ is _AsGiven else held


def _sha256(self: FileRef) -> str | None:
    held = _held_sha(self)  # sha256_text, inlined: read for every file by the digests and keys
    if held.__class__ is bytes:
        return held.hex()
    return held.value if held.__class__ is _AsGiven else held


def _version(self: FileRef) -> str | None:
    held = _held_version(self)
    if held.__class__ is int:  # under_stamp's: mtime, ctime and inode
        return stamp_text(held)
    return held.value if held.__class__ is _AsGiven else held


def _file_ref_init(
    self: FileRef,
    uri: str,
    relpath: str,
    size: int,
    format: str | None = None,
    sha256: str | None = None,
    width: int | None = None,
    height: int | None = None,
    version: str | None = None,
    decode_pending: bool = False,
) -> None:
    _raw_init(
        self, _root_of(uri, relpath), relpath, size, format, held_sha256(sha256), width, height,
        _AsGiven(version) if version.__class__ is int else version, decode_pending,
    )  # fmt: skip


def _uri(self: FileRef) -> str:
    root = _held_root(self)
    return root + self.relpath if root.__class__ is str else root.uri


# What other per-file values (validation's FileJob) hold instead of a whole URI, as FileRef does.
UriRoot = str | _WholeUri
uri_root = _root_of  # (uri, relpath) -> what to hold: the root shared by every file under it
held_root = _held_root  # what a FileRef holds: hand it on without making the URI
held_sha256_of = _held_sha  # what a FileRef holds for its sha256 (held_sha256's value), not written out


def with_facts_in_place(
    ref: FileRef,
    format: str | None,
    sha256: Any,
    width: int | None,
    height: int | None,
    decode_pending: bool,
) -> FileRef:
    """`ref.with_facts(...)`, made by filling `ref` itself: for the decision handing discovery's
    samples over (hubpress.sources.policy), which holds every reference to `ref` that is read
    again, so a new FileRef per file (two million at a million samples) need not be made while
    discovery's is freed. `ref` must be in no set and no dict key (its hash is its fields');
    to everyone else a FileRef is frozen."""
    _set_held_sha(ref, sha256 if sha256.__class__ is bytes else held_sha256(sha256))
    _set_facts(ref, shared_facts(format, width, height, decode_pending))
    return ref


def with_shared_facts_in_place(ref: FileRef, facts: tuple[Any, ...], sha256: Any) -> FileRef:
    """with_facts_in_place(ref, format, sha256, width, height, decode_pending) given what
    `shared_facts` made of the four values once: the decision's keep in place of two million
    files, with two slot writes each."""
    _set_held_sha(ref, sha256 if sha256.__class__ is bytes else held_sha256(sha256))
    _set_facts(ref, facts)
    return ref


def joined_uri(root: UriRoot, relpath: str) -> str:
    """The URI that `uri_root(uri, relpath)` was made from."""
    return root + relpath if root.__class__ is str else root.uri  # type: ignore[union-attr,operator]


def _ref_fields(ref: FileRef) -> dict[str, Any]:
    return {f.name: getattr(ref, f.name) for f in fields(ref)}


_file_ref_init.__qualname__ = "FileRef.__init__"
FileRef.__init__ = _file_ref_init  # type: ignore[method-assign]
FileRef.uri = property(_uri, doc="The file's absolute local path or s3://bucket/key: root + relpath.")  # type: ignore[assignment,method-assign]
FileRef.sha256 = property(_sha256, doc="The file's sha256 (64 hex digits), or None if not read.")  # type: ignore[assignment,method-assign]
FileRef.version = property(_version, doc="mtime_ns+ctime_ns:inode locally, the ETag on S3.")  # type: ignore[assignment,method-assign]
FileRef.format = property(lambda self: _held_facts(self)[0], doc="The true format read from the bytes.")  # type: ignore[assignment,method-assign]
FileRef.width = property(lambda self: _held_facts(self)[1], doc="The width in pixels, once read.")  # type: ignore[assignment,method-assign]
FileRef.height = property(lambda self: _held_facts(self)[2], doc="The height in pixels, once read.")  # type: ignore[assignment,method-assign]
FileRef.decode_pending = property(  # type: ignore[assignment,method-assign]
    lambda self: _held_facts(self)[3], doc="Validation read the header only: the build decodes the pixels."
)


@dataclass(frozen=True, slots=True)
class Problem:
    split: str
    sample: str | None
    kind: str
    detail: str
    path: str | None = None
    severity: Severity = "error"


@dataclass(frozen=True, slots=True)
class Correction:
    """Something hubpress corrected rather than refused; `from_` and `to` are relpaths or formats."""

    split: str
    sample: str | None
    path: str
    from_: str
    to: str
    kind: str = "extension_mismatch"  # or "file_resolved"


@dataclass(slots=True)
class Sample:
    id: str
    split: str
    prompt: str | None = None
    controls: list[FileRef] = field(default_factory=list)
    mask: FileRef | None = None
    target: FileRef | None = None
    prompt_file: FileRef | None = None  # folder layout: training_images/<base>.txt
    row: int | None = None  # CSV layout: 1-based data row number

    def images(self) -> list[FileRef]:
        refs = list(self.controls)
        if self.mask is not None:
            refs.append(self.mask)
        if self.target is not None:
            refs.append(self.target)
        return refs


@dataclass(frozen=True, slots=True)
class SkippedSample:
    id: str
    reasons: list[str]  # problem kinds


@dataclass(slots=True)
class SplitManifest:
    split: str
    samples: list[Sample] = field(default_factory=list)  # kept, ordered by id
    skipped: list[SkippedSample] = field(default_factory=list)


@dataclass(slots=True)
class IntakeReport:
    source: str
    layout: Layout
    splits: dict[str, SplitManifest] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)
    # Work counters of the run that made the report (files, cache_hits, files_read, bytes_read,
    # images_decoded, ...): how a test or a person sees that a re-run read nothing.
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_json(self) -> bytes:
        return _REPORT.dump_json(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> IntakeReport:
        return _REPORT.validate_json(data)


_REPORT = TypeAdapter(IntakeReport)


# What a FileRef holds in its version slot, unexpanded: under_stamp's int (compact, below
# _COMPACT, or of the 192-bit form) or the value as given: for validation's cache scan, which
# compares two million versions with their text (stamp_text) without the `version` property.
held_stamp = _held_version


def stamp_text(held: int) -> str:
    """The version text of an int held_stamp gave (FileRef.version's)."""
    if held < _COMPACT:
        mtime = held >> 118
        return f"{mtime}+{mtime + ((held >> 56) & _LOW62) - _DELTA_BIAS}:{held & _LOW56}"
    return f"{(held >> 128) - _STAMP_BIAS}+{((held >> 64) & _LOW64) - _STAMP_BIAS}:{held & _LOW64}"
