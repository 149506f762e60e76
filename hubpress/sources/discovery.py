"""Discovery: which samples a source holds, decided from ONE listing of it (and the CSV texts).

Pure functions: no file is opened, globbed or stat-ed here. The caller lists the source once
(`Storage.list`, one paginated ListObjectsV2 on S3) and, for the CSV layout, reads train.csv /
test.csv; everything else is matching names in memory, which is what keeps 100,000 samples
within seconds. Bytes (formats, decoding, prompts in files) are validation's job.

Folder layout (qflux guide), per split `train/` and/or `test/`:
    training_images/<base>.txt              prompt: one sample per prompt file
    training_images/<base>.<ext>            optional target
    control_images/<base>.<ext>             main control
    control_images/<base>_control_<N>.<ext> additional controls, N = 1, 2, ... in numeric order
    control_images/<base>_mask.<ext>        optional mask
An exact `<base>` match always wins: `a_1.png` beside prompt `a_1.txt` is the main control of
`a_1`, never anything of `a`.

CSV layout: `train.csv` / `test.csv` at the root, columns image, control, control_1..K, prompt,
optionally mask and id; paths relative to the root.
"""

from __future__ import annotations

import csv
import gc
import io
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from hubpress.errors import SourceError
from hubpress.sources.formats import split_extension
from hubpress.sources.models import Correction, FileRef, Layout, Problem, Sample, severity_of
from hubpress.storage.files import ListedFile

SPLITS = ("train", "test")
CSV_NAMES = {split: f"{split}.csv" for split in SPLITS}
LAYOUT_HELP = (
    "expected either the folder layout (train/ and/or test/ holding control_images/ and "
    "training_images/) or the CSV layout (train.csv and/or test.csv at the root)"
)
CSV_COLUMNS_HELP = "image, control, control_1 ... control_K, prompt, and optionally mask and id"

_NUMBERED = re.compile(r"(.+)_control_([1-9][0-9]*)")
_CONTROL_COLUMN = re.compile(r"control_([1-9][0-9]*)")
_URL_OR_DRIVE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(slots=True)
class Discovery:
    """What a listing says: samples per split (ordered by id), with the problems found on the way."""

    layout: Layout
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)

    def sample_count(self) -> int:
        return sum(len(s) for s in self.samples.values())


def _problem(split: str, sample: str | None, kind: str, detail: str, path: str | None = None) -> Problem:
    return Problem(split, sample, kind, detail, path, severity_of(kind))


def file_ref(listed: ListedFile, root: str) -> FileRef:
    """A FileRef for a listed file; its version (mtime_ns[:inode] or ETag) keys the caches."""
    version = f"{listed.version}:{listed.inode}" if listed.inode is not None else listed.version
    return FileRef(
        uri=f"{root.rstrip('/')}/{listed.relpath}", relpath=listed.relpath, size=listed.size, version=version
    )


def detect_layout(relpaths: Iterable[str], requested: str = "auto") -> Layout:
    """csv when train.csv or test.csv is at the root, folder when train/ or test/ is; else SourceError."""
    has_csv = has_dirs = False
    for rel in relpaths:
        top, slash, _ = rel.partition("/")
        if not slash and top in ("train.csv", "test.csv"):
            has_csv = True
        elif slash and top in SPLITS:
            has_dirs = True
    if requested == "csv":
        if not has_csv:
            raise SourceError(
                f"--layout csv: no train.csv or test.csv at the root of the source ({LAYOUT_HELP})."
            )
        return "csv"
    if requested == "folder":
        if not has_dirs:
            raise SourceError(
                "--layout folder: neither train/ nor test/ exists (or both are empty) at the root of the "
                "source; expected train/ and/or test/, each with control_images/ and training_images/."
            )
        return "folder"
    if requested != "auto":
        raise SourceError(f"unknown layout {requested!r}: use auto, folder or csv.")
    if has_csv:
        return "csv"
    if has_dirs:
        return "folder"
    raise SourceError(f"cannot tell the layout of this source: {LAYOUT_HELP}. Found neither.")


def discover(
    listing: Sequence[ListedFile],
    *,
    root: str,
    layout: str = "auto",
    csv_texts: Mapping[str, str] | None = None,
    allow_missing_target: bool = False,
    splits: Iterable[str] | None = None,
) -> Discovery:
    """Samples of every split (or of `splits`), from one listing of the source (and the CSV texts).

    `root` is the source URI (local path or s3://bucket/prefix) that FileRef URIs are built on;
    `csv_texts` maps a split to the decoded text of its CSV file.
    """
    listing, unnamed = _split_undecodable_names(listing)
    chosen = detect_layout((lf.relpath for lf in listing), layout)
    with gc_paused():
        if chosen == "folder":
            found = discover_folder(listing, root=root, splits=splits)
        else:
            found = discover_csv(
                listing,
                root=root,
                csv_texts=csv_texts or {},
                allow_missing_target=allow_missing_target,
                splits=splits,
            )
    found.problems.extend(unnamed)
    return found


def _split_undecodable_names(listing: Sequence[ListedFile]) -> tuple[Sequence[ListedFile], list[Problem]]:
    """Files whose names are not valid UTF-8 (a local listing carries them surrogate-escaped) cannot
    become sample ids, Arrow strings or Hub paths: each is left out with its own problem, shown
    with backslash escapes, instead of breaking the whole run later."""
    problems: list[Problem] = []
    kept: list[ListedFile] = []
    for lf in listing:
        try:
            lf.relpath.encode("utf-8")
        except UnicodeEncodeError:
            shown = lf.relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            split = shown.split("/", 1)[0]
            detail = f"the file name {shown!r} is not valid UTF-8; rename it"
            problems.append(_problem(split, None, "name_not_utf8", detail, shown))
        else:
            kept.append(lf)
    return (listing, problems) if not problems else (kept, problems)


@contextmanager
def gc_paused():
    """Discovery allocates a few objects per file and frees none of them: the cyclic GC would
    rescan that growing heap again and again (a third of the time at 100,000 samples)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ----------------------------------------------------------------------------------------- folder


def discover_folder(
    listing: Iterable[ListedFile], *, root: str, splits: Iterable[str] | None = None
) -> Discovery:
    wanted = set(SPLITS if splits is None else splits)
    by_split: dict[str, list[ListedFile]] = {}
    for lf in listing:
        top, slash, _ = lf.relpath.partition("/")
        if slash and top in wanted:
            by_split.setdefault(top, []).append(lf)
    if not by_split:
        raise SourceError(
            "neither train/ nor test/ holds any file; the folder layout expects train/ and/or test/, "
            "each with control_images/<base>.<ext> and training_images/<base>.txt."
        )
    found = Discovery(layout="folder")
    for split in SPLITS:
        if split in by_split:
            found.samples[split] = _folder_split(split, by_split[split], root, found.problems)
    return found


def _folder_split(split: str, files: list[ListedFile], root: str, problems: list[Problem]) -> list[Sample]:
    prompts: dict[str, list[ListedFile]] = defaultdict(list)
    targets: dict[str, list[ListedFile]] = defaultdict(list)
    controls: list[tuple[str, ListedFile]] = []
    skip = len(split) + 1
    for lf in files:
        sub, slash, name = lf.relpath[skip:].partition("/")
        if not slash:  # a file directly in train/ or test/
            if not sub.startswith("."):
                problems.append(
                    _ignored(split, lf, f"{split}/ holds only control_images/ and training_images/")
                )
            continue
        if name.startswith(".") or sub.startswith("."):
            continue  # hidden files (.DS_Store, editor swap files) are not data
        if "/" in name:
            problems.append(
                _ignored(split, lf, "sub-folders of control_images/ and training_images/ are not read")
            )
            continue
        stem, ext = split_extension(name)
        if sub == "training_images":
            if ext is not None:
                targets[stem].append(lf)
                continue
            base, dot, suffix = name.rpartition(".")
            if dot and base and suffix.lower() == "txt":
                prompts[base].append(lf)
            else:
                problems.append(_ignored(split, lf, "not a prompt (.txt) nor an image"))
        elif sub == "control_images":
            if ext is not None:
                controls.append((stem, lf))
            else:
                problems.append(_ignored(split, lf, "not an image with a supported extension"))
        else:
            problems.append(_ignored(split, lf, f"{split}/ holds only control_images/ and training_images/"))

    main: dict[str, list[ListedFile]] = defaultdict(list)
    numbered: dict[str, dict[int, list[ListedFile]]] = defaultdict(lambda: defaultdict(list))
    masks: dict[str, list[ListedFile]] = defaultdict(list)
    for stem, lf in controls:
        if stem in prompts:  # an exact base always wins (a_1.png belongs to a_1.txt)
            main[stem].append(lf)
            continue
        if stem.endswith("_mask") and stem[:-5] in prompts:
            masks[stem[:-5]].append(lf)
            continue
        m = _NUMBERED.fullmatch(stem)
        if m and m.group(1) in prompts:
            numbered[m.group(1)][int(m.group(2))].append(lf)
            continue
        kind = "orphan_mask" if stem.endswith("_mask") else "orphan_control"
        problems.append(
            _problem(split, None, kind, f"no prompt training_images/{_owner(stem)}.txt for it", lf.relpath)
        )
    for stem, lfs in targets.items():
        if stem in prompts:
            continue
        for lf in lfs:
            if stem.endswith("_mask") and stem[:-5] in prompts:
                detail = "a mask in training_images/ is not read: masks belong in control_images/"
                problems.append(_problem(split, stem[:-5], "orphan_mask", detail, lf.relpath))
            else:
                problems.append(
                    _problem(
                        split,
                        None,
                        "orphan_target",
                        f"no prompt {split}/training_images/{stem}.txt",
                        lf.relpath,
                    )
                )

    samples: list[Sample] = []
    for base in sorted(prompts):
        refs = {"prompt": prompts[base], "main control": main.get(base, []), "mask": masks.get(base, [])}
        refs["target"] = targets.get(base, [])
        for role, lfs in refs.items():
            if len(lfs) > 1:
                problems.append(_ambiguous(split, base, role, lfs))
        sample_controls = [file_ref(lfs[0], root) for lfs in [refs["main control"]] if lfs]
        for n, lfs in sorted(numbered.get(base, {}).items()):
            if len(lfs) > 1:
                problems.append(_ambiguous(split, base, f"control {n}", lfs))
            sample_controls.append(file_ref(lfs[0], root))
        if not sample_controls:
            problems.append(
                _problem(
                    split,
                    base,
                    "missing_control",
                    f"no control image: expected {split}/control_images/{base}.<ext> or {base}_control_1.<ext>",
                    prompts[base][0].relpath,
                )
            )
        samples.append(
            Sample(
                id=base,
                split=split,
                controls=sample_controls,
                mask=file_ref(refs["mask"][0], root) if refs["mask"] else None,
                target=file_ref(refs["target"][0], root) if refs["target"] else None,
                prompt_file=file_ref(prompts[base][0], root),
            )
        )
    return samples


def _owner(stem: str) -> str:
    if stem.endswith("_mask"):
        return stem[:-5]
    m = _NUMBERED.fullmatch(stem)
    return m.group(1) if m else stem


def _ignored(split: str, lf: ListedFile, why: str) -> Problem:
    return _problem(split, None, "ignored_file", f"ignored: {why}", lf.relpath)


def _ambiguous(
    split: str, sample: str | None, role: str, lfs: Sequence[ListedFile] | Sequence[str]
) -> Problem:
    names = sorted(x if isinstance(x, str) else x.relpath for x in lfs)
    return _problem(
        split, sample, "ambiguous_file", f"several files could be the {role}: {', '.join(names)}", names[0]
    )


# -------------------------------------------------------------------------------------------- csv


@dataclass(slots=True)
class _Index:
    """The listing, as a dict by relpath and (lazily) by (directory, stem) for image files."""

    files: dict[str, ListedFile]
    _by_stem: dict[tuple[str, str], list[str]] | None = None

    def by_stem(self, directory: str, stem: str) -> list[str]:
        if self._by_stem is None:
            index: dict[tuple[str, str], list[str]] = defaultdict(list)
            for rel in self.files:
                d, _, name = rel.rpartition("/")
                s, ext = split_extension(name)
                if ext is not None:
                    index[(d, s)].append(rel)
            self._by_stem = index
        return self._by_stem.get((directory, stem), [])


def normalise_csv_path(cell: str) -> tuple[str | None, str | None]:
    """(relpath, None) for a usable path inside the root, else (None, why it is refused)."""
    if "\x00" in cell:
        return None, "contains a NUL character"
    path = cell.strip().replace("\\", "/")
    if _URL_OR_DRIVE.match(path):
        return None, "is a URL or a drive path; paths must be relative to the dataset root"
    if path.startswith("/"):
        return None, "is absolute; paths must be relative to the dataset root"
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        return None, "leaves the dataset root (..)"
    return norm, None


def discover_csv(
    listing: Iterable[ListedFile],
    *,
    root: str,
    csv_texts: Mapping[str, str],
    allow_missing_target: bool = False,
    splits: Iterable[str] | None = None,
) -> Discovery:
    index = _Index({lf.relpath: lf for lf in listing})
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
    reader = csv.reader(io.StringIO(text))
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
                _problem(
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

    samples: list[Sample] = []
    rows = _CsvRows(split, name, index, root, position, control_cols)
    for rowno, row in enumerate(reader, start=1):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        samples.append(rows.sample(rowno, row, found))
    samples.sort(key=lambda s: s.id)
    return samples


@dataclass(slots=True)
class _CsvRows:
    """Turns rows of one CSV file into Samples, resolving paths against the listing."""

    split: str
    name: str
    index: _Index
    root: str
    position: dict[str, int]
    control_cols: list[str]

    def cell(self, row: list[str], col: str) -> str:
        i = self.position.get(col)
        return row[i].strip() if i is not None and i < len(row) else ""

    def sample(self, rowno: int, row: list[str], found: Discovery) -> Sample:
        pending: list[Problem] = []
        resolved: list[tuple[str, str]] = []  # (as written in the CSV, the file found instead)
        target = self.resolve(row, "image", rowno, pending, resolved) if "image" in self.position else None
        controls = [self.resolve(row, col, rowno, pending, resolved) for col in self.control_cols]
        controls = [ref for ref in controls if ref is not None]
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
            pending.append(_problem(self.split, None, "missing_control", detail, self.name))
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
        where = f"{self.name} row {rowno}, {col}"
        rel, why = normalise_csv_path(raw)
        if rel is None:
            pending.append(_problem(self.split, None, "path_outside_root", f"{where}: {raw!r} {why}", raw))
            return None
        lf = self.index.files.get(rel)
        if lf is not None:
            return file_ref(lf, self.root)
        directory, _, fname = rel.rpartition("/")
        candidates = self.index.by_stem(directory, fname.rpartition(".")[0] or fname)
        if len(candidates) == 1:
            resolved.append((rel, candidates[0]))
            return file_ref(self.index.files[candidates[0]], self.root)
        if candidates:
            pending.append(
                _ambiguous(self.split, None, f"{col} {rel!r} of {self.name} row {rowno}", candidates)
            )
            return None
        if col in self.control_cols:
            kind = "missing_control"
        elif col == "image" and self.split == "train":
            kind = "missing_target"
        else:
            kind = "missing_file"
        pending.append(_problem(self.split, None, kind, f"{where}: {rel} does not exist", rel))
        return None

    def conventional_mask(
        self, rowno: int, controls: list[FileRef], target: FileRef | None, pending: list[Problem]
    ) -> FileRef | None:
        """`<stem>_mask.<ext>` beside the main control, then beside the target (from the listing)."""
        homes = [ref.relpath for ref in (controls[:1] + ([target] if target is not None else []))]
        for rel in homes:
            directory, _, fname = rel.rpartition("/")
            candidates = self.index.by_stem(directory, f"{split_extension(fname)[0]}_mask")
            if len(candidates) == 1:
                return file_ref(self.index.files[candidates[0]], self.root)
            if candidates:
                pending.append(_ambiguous(self.split, None, f"mask of {self.name} row {rowno}", candidates))
                return None
        return None


def _stem_of(path: str) -> str:
    name = path.strip().replace("\\", "/").rsplit("/", 1)[-1]
    return split_extension(name)[0] if name else ""
