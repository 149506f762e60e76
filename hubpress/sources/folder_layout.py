"""Discovery of the folder layout (qflux guide), from one listing. Pure: no I/O.

Per split `train/` and/or `test/`:
    training_images/<base>.txt              prompt: one sample per prompt file
    training_images/<base>.<ext>            optional target
    control_images/<base>.<ext>             main control
    control_images/<base>_control_<N>.<ext> additional controls, N = 1, 2, ... in numeric order
    control_images/<base>_mask.<ext>        optional mask
An exact `<base>` match always wins: `a_1.png` beside prompt `a_1.txt` is the main control of
`a_1`, never anything of `a`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from hubpress.errors import SourceError
from hubpress.sources.formats import split_extension
from hubpress.sources.found import SPLITS, Discovery, ambiguous, file_ref, problem
from hubpress.sources.models import Problem, Sample
from hubpress.storage.files import ListedFile

_NUMBERED = re.compile(r"(.+)_control_([1-9][0-9]*)")


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
            problem(split, None, kind, f"no prompt training_images/{_owner(stem)}.txt for it", lf.relpath)
        )
    for stem, lfs in targets.items():
        if stem in prompts:
            continue
        for lf in lfs:
            if stem.endswith("_mask") and stem[:-5] in prompts:
                detail = "a mask in training_images/ is not read: masks belong in control_images/"
                problems.append(problem(split, stem[:-5], "orphan_mask", detail, lf.relpath))
            else:
                problems.append(
                    problem(
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
                problems.append(ambiguous(split, base, role, lfs))
        sample_controls = [file_ref(lfs[0], root) for lfs in [refs["main control"]] if lfs]
        for n, lfs in sorted(numbered.get(base, {}).items()):
            if len(lfs) > 1:
                problems.append(ambiguous(split, base, f"control {n}", lfs))
            sample_controls.append(file_ref(lfs[0], root))
        if not sample_controls:
            problems.append(
                problem(
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
    return problem(split, None, "ignored_file", f"ignored: {why}", lf.relpath)
