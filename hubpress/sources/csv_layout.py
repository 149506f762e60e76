"""Discovery of the CSV layout, from one listing and the CSV texts. Pure: no I/O.

`train.csv` / `test.csv` at the root, columns image, control, control_1..K, prompt, optionally
mask and id; paths relative to the root.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter, lt

from hubpress.errors import SourceError
from hubpress.sources.formats import split_extension
from hubpress.sources.found import (
    CSV_COLUMNS_HELP,
    CSV_NAMES,
    LAYOUT_HELP,
    SPLITS,
    Discovery,
    ambiguous,
    file_ref,
    file_ref_under,
    problem,
)
from hubpress.sources.models import Correction, FileRef, Problem, Sample
from hubpress.storage.files import ListedFile
from hubpress.storage.listing import ODD, Listing
from hubpress.storage.names import PLAIN_PATH, why_unsafe

_CONTROL_COLUMN = re.compile(r"control_([1-9][0-9]*)")
# Prompts may be long (a 1 MB prompt is legal): Python's csv module stops at 128 KiB per field.
MAX_FIELD = 64 * 1024 * 1024
PATH_COLUMNS = ("image", "control", "mask")  # plus control_N: the only cells that name files


def csv_rows(text: str):
    """csv.reader over `text`, with a field limit large enough for any legal prompt."""
    if csv.field_size_limit() < MAX_FIELD:
        csv.field_size_limit(MAX_FIELD)
    return csv.reader(_lines(text))


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, each with its "\n", as iterating io.StringIO(text) gives them (split
    at "\n" only; "\r" stays for the csv module). Not through StringIO: it holds a copy of the
    text at four bytes a character, 300 MB for the CSV of a million samples."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            yield text[start:]
            return
        yield text[start : stop + 1]
        start = stop + 1


def is_path_column(name: str) -> bool:
    column = name.strip().lower()
    return column in PATH_COLUMNS or _CONTROL_COLUMN.fullmatch(column) is not None


_URL_OR_DRIVE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


# A listing in relpath order is searched by bisection until this many searches (or a 64th of
# its files, if more) have missed the next file's position: a CSV in another order than the
# listing's is then looked up in a dict of every relpath, as it always was.
BISECT_AT_MOST = 4096


class _ListedByPath(Mapping[str, ListedFile]):
    """A Listing's files by relpath, as the dict of its ListedFiles by relpath reads: each
    relpath's index is found, and its ListedFile made when asked (most never are: `ref_maker`).

    A local listing comes in relpath order (hubpress.storage.files), and a CSV of sorted ids
    names its files in that order too: discovery tries the position after the last one a column
    found (_CsvRows._read_plain_columns), then a bisection of the relpaths, and builds the dict of
    every relpath only when neither pays (a listing out of order, a CSV in another order). The
    dict was about 100 bytes a sample at discovery's peak and a second of CPU at a million."""

    __slots__ = ("listing", "relpaths", "ordered", "_at", "_searches")

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        relpaths = self.relpaths = listing.relpaths
        # Strictly increasing: in order, each relpath once (a dict keeps a repeated one's last).
        self.ordered = all(map(lt, relpaths, islice(relpaths, 1, None)))
        self._at: dict[str, int] | None = None
        self._searches = max(BISECT_AT_MOST, len(relpaths) >> 6)

    @property
    def at(self) -> dict[str, int]:
        """relpath -> its index in the listing (the last, if it is listed twice)."""
        if self._at is None:
            self._at = self.listing.positions()
        return self._at

    def position(self, relpath: str) -> int | None:
        """at.get(relpath): by bisection while the listing is in order and that pays, else from
        the dict."""
        if self._at is None and self.ordered and relpath.__class__ is str and self._searches > 0:
            self._searches -= 1
            relpaths = self.relpaths
            n = bisect_left(relpaths, relpath)
            return n if n < len(relpaths) and relpaths[n] == relpath else None
        return self.at.get(relpath)

    def __getitem__(self, relpath: str) -> ListedFile:
        n = self.position(relpath)
        if n is None:
            raise KeyError(relpath)
        return self.listing[n]

    def __contains__(self, relpath: object) -> bool:
        return self.position(relpath) is not None if relpath.__class__ is str else relpath in self.at

    def __iter__(self) -> Iterator[str]:
        return iter(self.relpaths if self._at is None and self.ordered else self.at)

    def __len__(self) -> int:
        return len(self.relpaths if self._at is None and self.ordered else self.at)


def _files_by_path(listing: Iterable[ListedFile]) -> Mapping[str, ListedFile]:
    if isinstance(listing, Listing):
        return _ListedByPath(listing)
    return {lf.relpath: lf for lf in listing}


def _ref_maker(files: Mapping[str, ListedFile], prefix: str) -> Callable[[str], FileRef | None]:
    """relpath -> the FileRef file_ref_under makes of its listed file under `prefix`, or None if it
    is not listed; from a Listing's columns, without its ListedFile."""
    if isinstance(files, _ListedByPath):
        at, listing, under = files.position, files.listing, FileRef.under_stamp
        relpaths, sizes, mtimes, ctimes, inodes = listing.columns()

        def from_columns(relpath: str) -> FileRef | None:
            n = at(relpath)
            if n is None:
                return None
            inode = inodes[n]
            if inode == ODD:  # held as its ListedFile
                return file_ref_under(listing[n], prefix)
            # file_ref_under's version, "{stamp_version(mtime, ctime)}:{inode}", held as the three
            # numbers (tests/storage/test_listing_columns.py, tests/sources/test_file_ref_packed.py)
            return under(prefix, relpaths[n], sizes[n], mtimes[n], ctimes[n], inode)

        return from_columns
    get = files.get

    def from_listed(relpath: str) -> FileRef | None:
        listed = get(relpath)
        return None if listed is None else file_ref_under(listed, prefix)

    return from_listed


@dataclass(slots=True)
class _Index:
    """The listing, as a mapping by relpath and (lazily) by (directory, stem) for image files."""

    files: Mapping[str, ListedFile]
    _by_stem: dict[tuple[str, str], list[str]] | None = None
    _masks: dict[tuple[str, str], list[str]] | None = None

    def by_stem(self, directory: str, stem: str) -> list[str]:
        if self._by_stem is None:
            self._by_stem = _stem_index(self.files)
        return self._by_stem.get((directory, stem), [])

    def has_masks(self) -> bool:
        if self._masks is None:
            self._masks = _stem_index(rel for rel in self.files if "_mask" in rel)
        return bool(self._masks)

    def masks(self, directory: str, name: str) -> list[str]:
        """The conventional masks of the image `name`: by_stem(directory, f"{stem}_mask"), from an
        index of the `*_mask` names alone. Every row asks for its mask, and most sources have
        none: indexing every file (a tuple and two strings per file, at a million files) would
        be spent for nothing."""
        if not self.has_masks():
            return []
        return self._masks.get((directory, f"{split_extension(name)[0]}_mask"), [])


def _stem_index(relpaths: Iterable[str]) -> dict[tuple[str, str], list[str]]:
    """Image files by (directory, stem), in listing order."""
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in relpaths:
        d, _, name = rel.rpartition("/")
        s, ext = split_extension(name)
        if ext is not None:
            index[(d, s)].append(rel)
    return index


def normalise_csv_path(cell: str) -> tuple[str | None, str | None]:
    """(relpath, None) for a usable path inside the root, else (None, why it is refused).

    Backslashes read as folder separators and leading/inner `.` segments are dropped; everything
    else goes through the name gate (hubpress.storage.names): `..`, empty segments, NUL, absolute
    paths and URLs are refused."""
    if PLAIN_PATH.fullmatch(cell):  # most cells: a path every rule below accepts unchanged
        return cell, None
    if "\x00" in cell:
        return None, "contains a NUL character"
    path = cell.strip().replace("\\", "/")
    if _URL_OR_DRIVE.match(path):
        return None, "is a URL or a drive path; paths must be relative to the dataset root"
    if path.startswith("/"):
        return None, "is absolute; paths must be relative to the dataset root"
    path = "/".join(part for part in path.split("/") if part != ".")
    why = why_unsafe(path)
    if why is not None:
        return None, why
    return path, None


def discover_csv(
    listing: Iterable[ListedFile],
    *,
    root: str,
    csv_texts: Mapping[str, str],
    allow_missing_target: bool = False,
    splits: Iterable[str] | None = None,
) -> Discovery:
    index = _Index(_files_by_path(listing))
    wanted = set(SPLITS if splits is None else splits)
    present = [s for s in SPLITS if CSV_NAMES[s] in index.files]
    if not present:
        raise SourceError(f"no train.csv or test.csv at the root of the source ({LAYOUT_HELP}).")
    found = Discovery(layout="csv")
    for split in (s for s in present if s in wanted):
        if split not in csv_texts:
            raise SourceError(f"{CSV_NAMES[split]} was listed but its text was not read.")
        found.samples[split] = _csv_split(split, csv_texts[split], index, root, found, allow_missing_target)
    return found


def _csv_split(
    split: str, text: str, index: _Index, root: str, found: Discovery, allow_missing_target: bool
) -> list[Sample]:
    name = CSV_NAMES[split]
    reader = csv_rows(text)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise SourceError(f"{name} is empty: expected a header row with the columns {CSV_COLUMNS_HELP}.")
    columns = [h.strip().lower() for h in header]
    position: dict[str, int] = {}
    numbered_cols: list[tuple[int, str]] = []
    for i, col in enumerate(columns):
        if col in position:
            raise SourceError(f"{name}: column {col!r} appears twice (found: {', '.join(columns)}).")
        m = _CONTROL_COLUMN.fullmatch(col)
        if m:
            numbered_cols.append((int(m.group(1)), col))
        elif col not in ("image", "control", "prompt", "mask", "id"):
            found.problems.append(
                problem(
                    split, None, "unknown_column", f"{name}: unknown column {header[i]!r} is ignored", name
                )
            )
            continue
        position[col] = i
    missing = [c for c in ("control", "prompt") if c not in position]
    if split == "train" and "image" not in position and not allow_missing_target:
        missing.insert(0, "image")
    if missing:
        hint = (
            " (the train split needs targets; pass allow_missing_target / --allow-missing-target to accept none)"
            if "image" in missing
            else ""
        )
        raise SourceError(
            f"{name} lacks the required column(s) {', '.join(missing)}; found: {', '.join(columns)}. "
            f"Expected {CSV_COLUMNS_HELP}{hint}."
        )
    control_cols = ["control"] + [col for _, col in sorted(numbered_cols)]

    rows = _CsvRows(split, name, index, root, position, control_cols)
    samples = rows.read(reader, found)
    samples.sort(key=_ID)
    return samples


_ID = attrgetter("id")


@dataclass(slots=True)
class _CsvRows:
    """Turns rows of one CSV file into Samples, resolving paths against the listing."""

    split: str
    name: str
    index: _Index
    root: str
    position: dict[str, int]
    control_cols: list[str]
    _image: int | None = field(init=False)
    _controls: list[int] = field(init=False)
    _id: int | None = field(init=False)
    _prompt: int = field(init=False)
    _width: int = field(init=False)
    _plain: bool = field(init=False)
    _prefix: str = field(init=False)
    _ref: Callable[[str], FileRef | None] = field(init=False)

    def __post_init__(self) -> None:
        position = self.position
        self._image = position.get("image")
        self._controls = [position[col] for col in self.control_cols]
        self._id = position.get("id")
        self._prompt = position["prompt"]
        self._width = max(position.values()) + 1
        # No mask column and no `*_mask` file: a row's mask is None, as conventional_mask says.
        self._plain = self._image is not None and "mask" not in position and not self.index.has_masks()
        self._prefix = f"{self.root.rstrip('/')}/"
        self._ref = _ref_maker(self.index.files, self._prefix)

    def read(self, reader: Iterable[list[str]], found: Discovery) -> list[Sample]:
        """The samples of the rows `reader` gives (data row 1 onward), blank rows skipped."""
        if self._plain and isinstance(self.index.files, _ListedByPath):
            return self._read_plain_columns(reader, found)
        samples = []
        for rowno, row in enumerate(reader, start=1):
            if not any(map(str.strip, row)):
                continue  # blank line
            samples.append(self.sample(rowno, row, found))
        return samples

    def _read_plain_columns(self, reader: Iterable[list[str]], found: Discovery) -> list[Sample]:
        """read() over a Listing's columns: plain_sample and from_columns inlined in one loop,
        with no call per row but the FileRefs' and the Sample's own (most of discovery's time at
        a million samples was those calls). A row plain_sample would refuse goes to
        checked_sample, a blank one is skipped, as read() does
        (tests/sources/test_csv_plain_columns.py holds the two to each other)."""
        files = self.index.files
        assert isinstance(files, _ListedByPath)
        at, listing = files.position, files.listing
        relpaths, sizes, mtimes, ctimes, inodes = listing.columns()
        under, prefix, plain = FileRef.under_stamp, self._prefix, PLAIN_PATH.fullmatch
        split, width, image_at, id_at, prompt_at = (
            self.split,
            self._width,
            self._image,
            self._id,
            self._prompt,
        )
        controls_at = self._controls
        assert image_at is not None  # _plain
        samples: list[Sample] = []
        append = samples.append
        # By column: the position after the file the column's last cell named, where a CSV in
        # the listing's order names its next file; else _ListedByPath.position.
        after = [0] * width
        count = len(relpaths) if files.ordered else 0  # out of order, a relpath may be listed twice
        for rowno, row in enumerate(reader, start=1):
            if len(row) >= width:
                image = row[image_at]
                n = after[image_at]
                if n >= count or relpaths[n] != image:
                    n = at(image)
                if n is not None and plain(image):
                    after[image_at] = n + 1
                    controls = []
                    for i in controls_at:
                        raw = row[i]
                        if raw:
                            m = after[i]
                            if m >= count or relpaths[m] != raw:
                                m = at(raw)
                            if m is None or not plain(raw):
                                break
                            after[i] = m + 1
                            inode = inodes[m]
                            controls.append(
                                under(prefix, relpaths[m], sizes[m], mtimes[m], ctimes[m], inode)
                                if inode != ODD
                                else file_ref_under(listing[m], prefix)
                            )
                    else:
                        if controls:
                            inode = inodes[n]
                            target = (
                                under(prefix, relpaths[n], sizes[n], mtimes[n], ctimes[n], inode)
                                if inode != ODD
                                else file_ref_under(listing[n], prefix)
                            )
                            sid = (id_at is not None and row[id_at].strip()) or split_extension(
                                image.rpartition("/")[2]
                            )[0]
                            if len(controls) == 1:  # exact: a list filled by append keeps room for four
                                controls = [controls[0]]
                            append(
                                Sample(
                                    sid, split, row[prompt_at].strip(), controls, None, target, None, rowno
                                )
                            )
                            continue
            if not any(map(str.strip, row)):
                continue  # blank line
            append(self.checked_sample(rowno, row, found))
        return samples

    def sample(self, rowno: int, row: list[str], found: Discovery) -> Sample:
        return (self._plain and self.plain_sample(rowno, row)) or self.checked_sample(rowno, row, found)

    def plain_sample(self, rowno: int, row: list[str]) -> Sample | None:
        """The sample of a row whose every cell is as most rows' are: every path plain
        (PLAIN_PATH) and listed as written, a target and a control. What checked_sample makes of
        such a row, without its problem lists, its cells looked up by name, or the name gate's
        rules one by one (a third of discovery at a million samples); None: checked_sample."""
        if len(row) < self._width:
            return None
        ref, plain = self._ref, PLAIN_PATH.fullmatch
        # Path cells as written, not stripped: a cell with spaces around it is not plain, and
        # checked_sample strips it.
        image = row[self._image]
        target = ref(image) if plain(image) else None
        if target is None:
            return None
        controls = []
        for i in self._controls:
            raw = row[i]
            if raw:
                control = ref(raw) if plain(raw) else None
                if control is None:
                    return None
                controls.append(control)
        if not controls:
            return None
        if len(controls) == 1:
            controls = [controls[0]]  # exact, as _read_plain_columns makes it
        # The stem of a plain path: no spaces or backslashes to take off first (_stem_of).
        sid = (row[self._id].strip() if self._id is not None else "") or split_extension(
            image.rpartition("/")[2]
        )[0]
        return Sample(
            sid,
            self.split,
            row[self._prompt].strip(),
            controls,
            None,
            target,
            None,
            rowno,
        )

    def ref(self, listed: ListedFile) -> FileRef:
        return file_ref_under(listed, self._prefix)

    def cell(self, row: list[str], col: str) -> str:
        i = self.position.get(col)
        return row[i].strip() if i is not None and i < len(row) else ""

    def checked_sample(self, rowno: int, row: list[str], found: Discovery) -> Sample:
        pending: list[Problem] = []
        resolved: list[tuple[str, str]] = []  # (as written in the CSV, the file found instead)
        target = self.resolve(row, "image", rowno, pending, resolved) if "image" in self.position else None
        controls = [self.resolve(row, col, rowno, pending, resolved) for col in self.control_cols]
        controls = [ref for ref in controls if ref is not None]
        if len(controls) == 1:
            controls = [controls[0]]  # exact, as _read_plain_columns makes it
        if "mask" in self.position:
            mask = self.resolve(row, "mask", rowno, pending, resolved)
        else:
            mask = self.conventional_mask(rowno, controls, target, pending)
        cell = self.cell
        sid = (
            cell(row, "id")
            or _stem_of(cell(row, "image"))
            or next((_stem_of(cell(row, c)) for c in self.control_cols if cell(row, c)), "")
            or f"row {rowno}"
        )
        blocked = any(p.kind in ("missing_control", "path_outside_root", "ambiguous_file") for p in pending)
        if not controls and not blocked:
            detail = f"{self.name} row {rowno}: no control path (control and control_N are empty)"
            pending.append(problem(self.split, None, "missing_control", detail, self.name))
        # Problems and corrections were met before the sample's id was known: attach it now.
        for p in pending:
            found.problems.append(Problem(p.split, sid, p.kind, p.detail, p.path, p.severity))
        for written, actual in resolved:
            found.corrections.append(Correction(self.split, sid, actual, written, actual, "file_resolved"))
        prompt = cell(row, "prompt")  # a missing cell reads as empty: empty_prompt
        return Sample(
            id=sid, split=self.split, prompt=prompt, controls=controls, mask=mask, target=target, row=rowno
        )

    def resolve(
        self, row: list[str], col: str, rowno: int, pending: list[Problem], resolved: list[tuple[str, str]]
    ) -> FileRef | None:
        raw = self.cell(row, col)
        if not raw:
            return None
        rel, why = normalise_csv_path(raw)
        if rel is None:
            where = f"{self.name} row {rowno}, {col}"
            pending.append(problem(self.split, None, "path_outside_root", f"{where}: {raw!r} {why}", raw))
            return None
        lf = self.index.files.get(rel)
        if lf is not None:  # most cells: the text saying where is made only for a problem
            return file_ref(lf, self.root)
        directory, _, fname = rel.rpartition("/")
        candidates = self.index.by_stem(directory, fname.rpartition(".")[0] or fname)
        if len(candidates) == 1:
            resolved.append((rel, candidates[0]))
            return file_ref(self.index.files[candidates[0]], self.root)
        if candidates:
            pending.append(
                ambiguous(self.split, None, f"{col} {rel!r} of {self.name} row {rowno}", candidates)
            )
            return None
        if col in self.control_cols:
            kind = "missing_control"
        elif col == "image" and self.split == "train":
            kind = "missing_target"
        else:
            kind = "missing_file"
        where = f"{self.name} row {rowno}, {col}"
        pending.append(problem(self.split, None, kind, f"{where}: {rel} does not exist", rel))
        return None

    def conventional_mask(
        self, rowno: int, controls: list[FileRef], target: FileRef | None, pending: list[Problem]
    ) -> FileRef | None:
        """`<stem>_mask.<ext>` beside the main control, then beside the target (from the listing)."""
        if not self.index.has_masks():  # most sources: no `*_mask` file at all
            return None
        homes = [ref.relpath for ref in (controls[:1] + ([target] if target is not None else []))]
        for rel in homes:
            directory, _, fname = rel.rpartition("/")
            candidates = self.index.masks(directory, fname)
            if len(candidates) == 1:
                return file_ref(self.index.files[candidates[0]], self.root)
            if candidates:
                pending.append(ambiguous(self.split, None, f"mask of {self.name} row {rowno}", candidates))
                return None
        return None


def _stem_of(path: str) -> str:
    name = path.strip().replace("\\", "/").rsplit("/", 1)[-1]
    return split_extension(name)[0] if name else ""
