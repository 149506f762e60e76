"""The hundredth night: one dataset published night after night, as hubpress's users do, each night
a change drawn by hypothesis (a hypothesis.stateful machine), and after every night hubpress held to
what the README and docs/how-it-works.md claim:

- the head holds exactly the source's valid samples (ids, splits, prompts, every control's and the
  target's and mask's bytes and file names, read back from the published parquet with pyarrow):
  nothing lost, nothing stale;
- every problem in the source is in the report (the manifest's skipped samples and corrections);
- the manifest names exactly the shards the head holds, with their sha256 and size, and the card's
  data_files list them, train first, then test;
- a shard's name is its key, a digest of its rows' content: two shards of that name hold the same
  bytes, in this repo's history and in a first publish of the same source to a fresh target;
- a night costs what changed: an unchanged night sends nothing and commits nothing; a change in one
  place replaces its shard and at most the next; what the run says it sent is what the Hub's own
  log received;
- a successful night leaves no shard in staging; a failed night's sealed shards are reused.

The source is a folder or CSV tree with a train split and, drawn, a test split; a sample has one
control or several (<id>_control_N, CSV columns control_1 ... control_K). It is read from disk or,
drawn, from S3 (moto's session server: the tree is mirrored into a bucket before every night, an
unchanged file keeping its object). The Hub is the session's test Hub (real huggingface_hub
client; the Xet lane, and the LFS lane: `make test` runs this file in both) behind
tests/hubproxy.py, which refuses or loses a commit's answer on the nights that draw it. Every night
is a real publish through hubpress.api, in this process.

CI runs a few short examples; hunt with more:
    HUBPRESS_NIGHTS_EXAMPLES=40 HUBPRESS_NIGHTS_STEPS=25 HUBPRESS_NIGHTS_RANDOM=1 \\
        .venv/bin/pytest tests/e2e/test_many_nights.py
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from PIL import Image

from tests.e2e.nights import (
    NIGHTS,
    Head,
    HubTarget,
    LocalTarget,
    diff,
    files_received,
    no_file_content_received,
    png,
    sha,
)

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.lfs]  # both lanes

COMMIT = r"^POST /api/datasets/[^ ]+/commit/"
SIZES = ("6KB", "9KB", "14KB")  # --max-shard-size: shards of a few samples each at 16-24 px
SPLIT = "train"


def jpeg(seed: int, size: int = 16) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def truncated_png(seed: int) -> bytes:
    data = png(seed)
    return data[: len(data) // 2]


def dimensions(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size  # the header only


TRUE_EXT = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg"}


def true_ext(data: bytes) -> str:
    return next(ext for magic, ext in TRUE_EXT.items() if data.startswith(magic))


def published_name(name: str, data: bytes) -> str:
    """The image's `path` field (docs/layouts.md): the source file's name, with its true format's
    extension only when its own extension lies."""
    stem, ext = name.rsplit(".", 1)
    own = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}.get(ext.lower())
    return name if own == true_ext(data) else f"{stem}.{true_ext(data)}"


@dataclass(frozen=True)
class SourceSample:
    """One sample as the source holds it: its split, file names (no folder) and bytes, and its caption."""

    control_name: str
    control: bytes
    target_name: str
    target: bytes | None  # None: the target file is missing (a broken train sample)
    caption: str
    mask: bytes | None = None  # folder layout: control_images/<id>_mask.png
    mask_name: str = ""
    extras: tuple[tuple[str, bytes], ...] = ()  # further controls: <id>_control_N.png, N = 1, 2, ...
    split: str = SPLIT

    @property
    def problem(self) -> str | None:
        """The kind intake must report for this sample, or None when it is published."""
        if self.target is None:
            return "missing_target"
        if not self.control.startswith(b"\x89PNG") and not self.control.startswith(b"\xff\xd8\xff"):
            return "undecodable_image"
        if self.control.startswith(b"\x89PNG") and not self.control.endswith(b"IEND\xaeB`\x82"):
            return "undecodable_image"
        if self.mask is not None and dimensions(self.mask) != dimensions(self.control):
            return "mask_size_mismatch"
        return None

    @property
    def lies(self) -> bool:
        """Its control's extension names another format than its bytes (extension_mismatch)."""
        ext = self.control_name.rsplit(".", 1)[1].lower()
        return {"png": "png", "jpg": "jpg", "jpeg": "jpg"}[ext] != true_ext(self.control)


@dataclass
class Source:
    """The source tree, in the folder or CSV layout, and what it holds: written file by file as
    the model changes, so an untouched file keeps its mtime and inode (as a real tree's do)."""

    root: Path
    layout: str
    samples: dict[str, SourceSample] = field(default_factory=dict)

    def folders(self, split: str = SPLIT) -> tuple[Path, Path]:
        if self.layout == "folder":
            return self.root / split / "control_images", self.root / split / "training_images"
        return self.root / split / "control", self.root / split / "target"

    def files_of(self, sid: str, s: SourceSample) -> dict[Path, bytes]:
        """Every file of a sample (the CSV's rows aside), by path."""
        controls, targets = self.folders(s.split)
        files = {controls / s.control_name: s.control}
        files |= {controls / name: data for name, data in s.extras}
        if s.target is not None:
            files[targets / s.target_name] = s.target
        if s.mask is not None:
            files[controls / s.mask_name] = s.mask
        if self.layout == "folder":
            files[targets / f"{sid}.txt"] = s.caption.encode("utf-8")
        return files

    def put(self, sid: str, sample: SourceSample) -> None:
        """Only the files that changed are written or removed."""
        old = self.files_of(sid, self.samples[sid]) if sid in self.samples else {}
        new = self.files_of(sid, sample)
        for path, data in old.items():
            if new.get(path) != data:
                path.unlink()
        for path, data in new.items():
            if old.get(path) != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        self.samples[sid] = sample
        self._write_csv()

    def remove(self, sid: str) -> None:
        for path in self.files_of(sid, self.samples.pop(sid)):
            path.unlink()
        self._write_csv()

    def splits(self) -> list[str]:
        return sorted({s.split for s in self.samples.values()}, key=lambda split: split != SPLIT)

    def _write_csv(self) -> None:
        if self.layout != "csv":
            return
        for split in self.splits():
            controls, targets = self.folders(split)
            mine = sorted((sid, s) for sid, s in self.samples.items() if s.split == split)
            extra = max(len(s.extras) for _, s in mine)
            buf = io.StringIO()
            out = csv.writer(buf, lineterminator="\n")
            out.writerow(["id", "image", "control", *(f"control_{n}" for n in range(1, extra + 1)), "prompt"])
            for sid, s in mine:
                cells = [(controls / name).relative_to(self.root).as_posix() for name, _ in s.extras]
                cells += [""] * (extra - len(cells))
                target = (targets / s.target_name).relative_to(self.root).as_posix()
                control = (controls / s.control_name).relative_to(self.root).as_posix()
                out.writerow([sid, target, control, *cells, s.caption])
            path = self.root / f"{split}.csv"
            text = buf.getvalue()
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")

    def valid(self) -> dict[str, SourceSample]:
        return {sid: s for sid, s in self.samples.items() if s.problem is None}

    def broken(self) -> dict[str, str]:
        return {sid: s.problem for sid, s in self.samples.items() if s.problem is not None}


@dataclass(frozen=True)
class Published:
    """What the head must hold: a snapshot of the source's valid samples and problems."""

    rows: dict[str, tuple]  # id -> (split, prompt, controls' names and sha256, target's, mask's or None)
    broken: dict[str, str]
    mislabelled: frozenset[str]  # ids whose control's extension lies
    broken_in: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (split, kind)

    def broken_by_split(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for split, _ in self.broken_in.values():
            counts[split] = counts.get(split, 0) + 1
        return counts

    def splits(self) -> dict[str, int]:
        """Each split's published samples, train first (the card's order)."""
        counts: dict[str, int] = {}
        for row in sorted(self.rows.values(), key=lambda row: row[0] != SPLIT):
            counts[row[0]] = counts.get(row[0], 0) + 1
        return counts


def expected_rows(source: Source) -> Published:
    rows = {
        sid: (
            s.split,
            s.caption.strip(),  # as qflux reads a caption (str.strip: a trailing newline is not part of it)
            ((published_name(s.control_name, s.control), sha(s.control)),)
            + tuple((name, sha(data)) for name, data in s.extras),
            published_name(s.target_name, s.target),
            sha(s.target),
            None if s.mask is None else (s.mask_name, sha(s.mask)),
        )
        for sid, s in source.valid().items()
    }
    lies = frozenset(sid for sid, s in source.samples.items() if s.problem is None and s.lies)
    broken = {sid: (source.samples[sid].split, kind) for sid, kind in source.broken().items()}
    return Published(rows, {sid: kind for sid, (_, kind) in broken.items()}, lies, broken)


class Nights(RuleBasedStateMachine):
    """Set by the test: the test Hub, its proxy, and a folder for this run's trees."""

    hub = None
    proxy = None
    s3: tuple[str, str] | None = None  # moto's endpoint and a bucket
    workdir: Path = Path()

    def __init__(self) -> None:
        super().__init__()
        self.here = self.workdir / uuid.uuid4().hex[:8]
        self.here.mkdir(parents=True)
        os.environ["HUBPRESS_STAGING"] = str(self.here / "staging")
        os.environ["HUBPRESS_CACHE_DIR"] = str(self.here / "cache")
        self.target: HubTarget | LocalTarget | None = None
        self.source: Source | None = None
        self.in_s3 = False
        self.max_shard_size = SIZES[0]
        self.published: Published | None = None  # what the head must hold, after the last good night
        self.head: Head | None = None
        self.counter = 0
        self.night: dict | None = None  # the last good night: kind, result, stats, the head before
        self.log: list[str] = []
        self.by_name: dict[str, str] = {}  # every shard name ever published -> its sha256
        self.failed_before = False  # the night before failed: its sealed shards are in staging
        self.salt = uuid.uuid4().int % 2**40 * 2**20
        self.published_tree: tuple | None = None
        self.removed: dict[str, SourceSample] = {}  # samples removed on earlier nights, as they were
        self.sealed_by_failures: set[str] = set()  # shard files failed nights left in staging

    # --- the source ---------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:04d}"

    def new_sample(self, sid: str, seed: int, split: str = SPLIT) -> SourceSample:
        sample = SourceSample(
            f"{sid}.png",
            self.png(seed),
            f"{sid}.png",
            self.png(seed + 1),
            f"edit {sid} — étude {seed % 7}",
            split=split,
        )
        if self.source.layout == "folder" and seed % 3 == 0:
            sample = replace(sample, mask=self.png(seed + 2), mask_name=f"{sid}_mask.png")
        if seed % 4 == 1:  # several controls
            sample = replace(sample, extras=self.extras(sid, seed + 3, 1 + seed % 3 // 2))
        return sample

    def extras(self, sid: str, seed: int, count: int) -> tuple[tuple[str, bytes], ...]:
        return tuple((f"{sid}_control_{n}.png", self.png(seed + n)) for n in range(1, count + 1))

    def png(self, seed: int, size: int = 16) -> bytes:
        """This example's own images: the session's Xet store deduplicates across repos, and
        hypothesis replays an example, so the Hub's counts would depend on the examples before."""
        return png(self.salt + seed, size)

    @initialize(
        layout=st.sampled_from(["folder", "csv"]),
        where=st.sampled_from(["hub", "hub", "local"]),
        count=st.integers(12, 30),
        tests=st.sampled_from([0, 0, 2, 3]),
        s3=st.sampled_from([False, False, True]),
        seed=st.integers(0, 2**16),
    )
    def first_night(self, layout, where, count, tests, s3, seed):
        """A source of `count` train samples and `tests` test samples (0: no test split), on disk
        or in S3 (moto's server: the local tree is mirrored there before every night)."""
        self.source = Source(self.here / "src", layout)
        self.in_s3 = s3 and self.s3 is not None
        self.target = HubTarget(self.hub, self.proxy) if where == "hub" else LocalTarget(self.here / "out")
        for i in range(count):
            sid = f"m{i * 10:04d}"
            self.source.put(sid, self.new_sample(sid, seed + 2 * i))
        for i in range(tests):
            sid = f"t{i * 10:04d}"
            self.source.put(sid, self.new_sample(sid, seed + 2 * (count + i), split="test"))
        self.counter = (count + tests) * 10
        self.publish("first")

    def on_hub(self) -> bool:
        return isinstance(self.target, HubTarget)

    # --- the nights ----------------------------------------------------------------------------

    def ids(self) -> list[str]:
        return sorted(self.source.samples)

    @rule(
        count=st.integers(1, 3),
        where=st.sampled_from(["before", "between", "after"]),
        seed=st.integers(0, 2**16),
    )
    def add_samples(self, count, where, seed):
        ids = self.ids()
        if where == "before":
            new = [self.new_id("a") for _ in range(count)]
        elif where == "after":
            new = [self.new_id("z") for _ in range(count)]
        else:
            anchor = ids[seed % len(ids)]
            new = [f"{anchor}x{self.new_id('')}" for _ in range(count)]
        for i, sid in enumerate(new):
            self.source.put(sid, self.new_sample(sid, seed + 2 * i))
        self.publish("local", f"add {new}")

    def removable(self) -> list[str]:
        """Samples whose split keeps valid samples without them (an empty split is refused)."""
        valid = self.source.valid()
        left = {split: sum(1 for s in valid.values() if s.split == split) for split in self.source.splits()}
        return [
            sid for sid in self.ids() if left[self.source.samples[sid].split] > (4 if sid[0] != "t" else 1)
        ]

    @precondition(lambda self: self.removable())
    @rule(data=st.data())
    def remove_sample(self, data):
        sid = data.draw(st.sampled_from(self.removable()))
        self.removed[sid] = self.source.samples[sid]
        self.source.remove(sid)
        self.publish("local", f"remove {sid}")

    @precondition(lambda self: self.removed)
    @rule(data=st.data())
    def restore_removed_sample(self, data):
        """A sample removed on an earlier night comes back as it was: its old shard may return."""
        sid = data.draw(st.sampled_from(sorted(self.removed)))
        self.source.put(sid, self.removed.pop(sid))
        self.publish("local", f"restore {sid}")

    @precondition(lambda self: "test" in self.source.splits())
    @rule(seed=st.integers(0, 2**16), count=st.integers(1, 2))
    def add_test_samples(self, seed, count):
        new = [self.new_id("t") for _ in range(count)]
        for i, sid in enumerate(new):
            self.source.put(sid, self.new_sample(sid, seed + 2 * i, split="test"))
        self.publish("local", f"add {new} to test")

    @rule(data=st.data(), seed=st.integers(0, 2**16), count=st.integers(0, 3))
    def change_extra_controls(self, data, seed, count):
        """A sample's further controls (<id>_control_N) added, changed or removed."""
        sid = data.draw(st.sampled_from(self.ids()))
        self.source.put(
            sid, replace(self.source.samples[sid], extras=self.extras(sid, self.salt + seed, count))
        )
        self.publish("local", f"{sid} has {count} further controls")

    @rule(data=st.data())
    def share_an_image(self, data):
        """Two samples' controls hold the same bytes (a reused control): one decode, both kept."""
        first = data.draw(st.sampled_from(self.ids()))
        size = dimensions(self.source.samples[first].control)
        second = data.draw(
            st.sampled_from(
                [
                    sid
                    for sid, s in sorted(self.source.samples.items())
                    if s.split == SPLIT or s.mask is None or dimensions(s.mask) == size  # as above
                ]
            )
        )
        self.source.put(
            second, replace(self.source.samples[second], control=self.source.samples[first].control)
        )
        self.publish("local", f"{second}'s control = {first}'s")

    @rule(data=st.data(), seed=st.integers(0, 2**16), which=st.sampled_from(["control", "target", "mask"]))
    def change_image(self, data, seed, which):
        sid = data.draw(st.sampled_from(self.ids()))
        s = self.source.samples[sid]
        # A test sample keeps its control's size (16 px): a test split of two or three samples
        # whose masks stopped matching would be empty, which a publish refuses.
        image = self.png(seed, 16 + seed % 9 if s.split == SPLIT else 16)
        if which == "target" and s.target is not None:
            self.source.put(sid, replace(s, target=image))
        elif which == "mask" and self.source.layout == "folder":
            self.source.put(sid, replace(s, mask=image, mask_name=f"{sid}_mask.png"))  # a new one, or changed
        else:
            which = "control"
            self.source.put(sid, replace(s, control=image))
        self.publish("local", f"change the {which} of {sid}")

    @rule(
        data=st.data(), text=st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=30)
    )
    def change_caption(self, data, text):
        sid = data.draw(st.sampled_from(self.ids()))
        self.source.put(sid, replace(self.source.samples[sid], caption=text))
        self.publish("local", f"caption of {sid} = {text!r}")

    @rule(data=st.data(), seed=st.integers(0, 2**16))
    def mislabel_control(self, data, seed):
        """A control holding JPEG bytes under a .png name: kept, with an extension_mismatch."""
        sid = data.draw(st.sampled_from(self.ids()))
        s = self.source.samples[sid]
        self.source.put(sid, replace(s, control_name=f"{sid}.png", control=jpeg(self.salt + seed)))
        self.publish("local", f"JPEG bytes in {sid}.png")

    @rule(
        data=st.data(),
        spelling=st.sampled_from(["PNG", "Png", "png"]),
        which=st.sampled_from(["target", "mask"]),
    )
    def respell_extension(self, data, spelling, which):
        """The same bytes under another spelling of their extension (a.png -> a.PNG): the file's
        name is published in its image's `path`."""
        sid = data.draw(st.sampled_from(self.ids()))
        s = self.source.samples[sid]
        if which == "mask" and s.mask is not None:
            self.source.put(sid, replace(s, mask_name=f"{sid}_mask.{spelling}"))
        elif s.target is not None:
            self.source.put(sid, replace(s, target_name=f"{sid}.{spelling}"))
        self.publish("local", f"{which} of {sid} named .{spelling}")

    @rule(data=st.data(), seed=st.integers(0, 2**16), how=st.sampled_from(["truncated", "no_target"]))
    def add_broken_sample(self, data, seed, how):
        sid = self.new_id(data.draw(st.sampled_from(["a", "m", "z"])))
        sample = self.new_sample(sid, seed)
        sample = (
            replace(sample, control=truncated_png(self.salt + seed))
            if how == "truncated"
            else replace(sample, target=None)
        )
        self.source.put(sid, sample)
        self.publish("local", f"broken {sid} ({how})")

    @precondition(lambda self: self.source.broken())
    @rule(data=st.data(), seed=st.integers(0, 2**16))
    def mend_broken_sample(self, data, seed):
        sid = data.draw(st.sampled_from(sorted(self.source.broken())))
        s = self.source.samples[sid]
        self.source.put(sid, replace(s, control=self.png(seed), target=self.png(seed + 1)))
        self.publish("local", f"mend {sid}")

    @rule(size=st.sampled_from(SIZES))
    def change_max_shard_size(self, size):
        same = size == self.max_shard_size
        self.max_shard_size = size
        self.publish("unchanged" if same else "global", f"--max-shard-size {size}")

    @rule()
    def unchanged_night(self):
        self.publish("unchanged")

    @precondition(lambda self: self.on_hub())
    @rule(
        seed=st.integers(0, 2**16),
        how=st.sampled_from(["refused", "down", "lost"]),
        then=st.sampled_from(["again", "undone"]),
    )
    def commit_refused_or_lost(self, seed, how, then):
        """A changed night whose commit the Hub refuses, keeps failing, or applies without an
        answer; then the same night again, or a night with the change undone."""
        sid = self.new_id("m")
        self.source.put(sid, self.new_sample(sid, seed))
        if how == "refused":
            self.proxy.answer(COMMIT, 400, {"error": "Refused by the night's fault"})
        elif how == "down":
            self.proxy.answer(COMMIT, 500, {"error": "Down for the night"}, count=50)
        else:
            self.proxy.lose_answer(COMMIT)
        self.publish("local", f"add {sid}, commit {how}", fault="refused" if how != "lost" else how)
        self.proxy.clear()
        if then == "again":
            self.publish("again", f"add {sid} again")
        else:
            self.source.remove(sid)
            self.publish("local", f"{sid} removed again")

    # --- one night -----------------------------------------------------------------------------

    def upload(self, target, **options) -> dict:
        from hubpress.api import upload_editing_dataset, upload_editing_dataset_from_csv

        upload = upload_editing_dataset if self.source.layout == "folder" else upload_editing_dataset_from_csv
        return upload(self.source_uri(), target, max_shard_size=self.max_shard_size, **options)

    def source_uri(self) -> str:
        if not self.in_s3:
            return str(self.source.root)
        return f"s3://{self.s3[1]}/{self.here.name}/src"

    def mirror_to_s3(self) -> None:
        """The S3 source made the local tree: only the objects that differ are written or deleted,
        so an unchanged file keeps its object (ETag and LastModified), as a synced bucket does."""
        import boto3

        endpoint, bucket = self.s3
        client = boto3.client("s3", endpoint_url=endpoint)
        prefix = f"{self.here.name}/src/"
        held = {
            o["Key"]: o["ETag"].strip('"')
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        }
        wanted = {
            prefix + p.relative_to(self.source.root).as_posix(): p
            for p in self.source.root.rglob("*")
            if p.is_file()
        }
        for key, path in wanted.items():
            data = path.read_bytes()
            if held.get(key) != hashlib.md5(data).hexdigest():
                client.put_object(Bucket=bucket, Key=key, Body=data)
        for key in set(held) - set(wanted):
            client.delete_object(Bucket=bucket, Key=key)

    def staging(self) -> Path:
        return Path(os.environ["HUBPRESS_STAGING"])

    def tree(self) -> tuple:
        """What a night publishes from: every source file's path and bytes, and the option."""
        files = sorted(
            (p.relative_to(self.source.root).as_posix(), sha(p.read_bytes()))
            for p in self.source.root.rglob("*")
            if p.is_file()
        )
        return tuple(files), self.max_shard_size

    def publish(self, kind: str, what: str = "", fault: str | None = None) -> None:
        tree = self.tree()
        if self.in_s3:
            self.mirror_to_s3()
        if tree == self.published_tree:
            kind = "unchanged"  # the rule drew no change (the same caption, an absent mask)
        self.log.append(f"{kind}: {what}")
        started = time.monotonic()
        self.hub.reset_stats()
        before = self.head
        try:
            result = self.upload(self.target.name)
        except Exception as exc:
            if fault != "refused":
                raise
            result, error = None, exc
        else:
            error = None
        stats = self.hub.stats
        self.log[-1] += f" [{time.monotonic() - started:.1f}s]"
        if fault == "refused":
            assert error is not None, f"the Hub refused the commit, but the publish said {result}"
            assert "Traceback" not in str(error)
            assert self.target.read_head() == before  # the head is the last good night's
            self.failed_before = True
            # What it sealed stays in staging for the same night again, else for the sweep policy.
            self.sealed_by_failures |= {p.name for p in self.staging().rglob("*.parquet")}
            return
        self.head = self.target.read_head()
        expected = expected_rows(self.source)
        assert expected.rows, "no sample left"  # the rules keep some
        self.night = {
            "kind": kind,
            "result": result,
            "stats": stats,
            "before": before,
            "fault": fault,
            "published_before": self.published,
        }
        self.published, self.published_tree = expected, tree
        self.check_night()
        self.failed_before = False

    # --- what every night must leave ---------------------------------------------------------

    def check_night(self) -> None:
        night, result, stats = self.night, self.night["result"], self.night["stats"]
        before: Head | None = night["before"]
        head = self.head
        if night["kind"] == "unchanged":
            assert result["commit"] is None, (self.log[-1], result["commit"])
            assert head == before
            if self.on_hub():
                assert stats.commits == 0 and stats.upload_bytes == 0, stats.as_dict()
            return
        sent = set(head.shards) - set(before.shards) if before else set(head.shards)
        if night["fault"] != "lost":
            # What the run says it did against the target: the shards it sent are the head's new
            # shards, and (on the Hub) the files the Hub's log received are those and the preview.
            assert result["commit"] == head.commit, (result["commit"], head.commit)
            assert result["shards"] == len(head.shards)
            assert {p for p in result["uploaded_files"] if p.startswith("data/")} == sent
            assert result["shards_sent"] == len(sent)
            assert result["shards_reused"] + result["shards_built"] == result["shards"]
            # Each new shard was built, or taken sealed from staging (a failed night's build).
            assert result["shards_built"] + result["shards_reused_from_stage"] == len(sent), (result, sent)
            if night["kind"] == "again":
                assert result["shards_built"] == 0, result  # the failed night built them all
            elif not self.failed_before:
                assert result["shards_reused_from_stage"] == 0, result
            if self.on_hub():
                assert stats.commits == 1, stats.as_dict()
                preview = before is None or head.files.get("preview.webp") != before.files.get("preview.webp")
                # A shard the Hub held before (a change undone, a failed night's) need not cross
                # again, but one it never saw must.
                failed = {name[:16] for name in self.sealed_by_failures}  # <key>.parquet in staging
                new = {p for p in sent if p not in self.by_name and p.rsplit("-", 1)[1][:16] not in failed}
                received = files_received(stats)
                assert len(new) <= received <= len(sent) + preview, (stats.as_dict(), sent, preview)
                if night["kind"] == "again" and sent:
                    # The failed night sent its shards ahead: hf_xet may record the files again,
                    # but none of their bytes cross (the Hub's store grows by its file records).
                    held_bytes = sum(len(head.shards[p]) for p in sent)
                    assert no_file_content_received(stats, held_bytes // 2), (stats.as_dict(), sent)
        if night["kind"] in ("local", "again") and before is not None:
            # A change in one place replaces its shard and at most the next; new samples may take
            # new shards of their own beside them.
            gone = set(before.shards) - set(head.shards)
            added = len(set(self.published.rows) - set(night["published_before"].rows))
            assert len(gone) <= 2 and len(sent) <= 2 + added, (self.log[-1], sorted(gone), sorted(sent))
        # The summary's sample counts: what the head gained, lost and changed.
        if night["kind"] != "first" and result["changes"] is not None:
            old, new_rows = night["published_before"].rows, self.published.rows
            assert result["changes"] == {
                "added": len(set(new_rows) - set(old)),
                "changed": sum(1 for k in set(new_rows) & set(old) if new_rows[k] != old[k]),
                "removed": len(set(old) - set(new_rows)),
            }, (self.log[-1], result["changes"])

    @invariant()
    def head_holds_exactly_the_valid_samples(self):
        if self.head is None or self.published is None:
            return
        rows = {}
        for path, data in self.head.shards.items():
            split = path.removeprefix("data/").rsplit("-", 1)[0]
            assert split in self.source.splits(), path
            for row in pq.read_table(io.BytesIO(data)).to_pylist():
                assert row["id"] not in rows, f"{row['id']} twice"
                target, mask = row["target_image"], row["control_mask"]
                rows[row["id"]] = (
                    split,
                    row["prompt"],
                    tuple((c["path"], sha(c["bytes"])) for c in row["control_images"]),
                    target["path"],
                    sha(target["bytes"]),
                    None if mask is None else (mask["path"], sha(mask["bytes"])),
                )
        assert rows == self.published.rows, diff(rows, self.published.rows)

    @invariant()
    def the_manifest_and_card_name_what_is_published_and_every_problem(self):
        if self.head is None:
            return
        manifest = self.head.manifest
        assert {p: e["sha256"] for p, e in manifest["files"].items()} == self.head.shard_digests()
        assert all(e["size"] == len(self.head.shards[p]) for p, e in manifest["files"].items())
        splits = self.published.splits()
        assert set(manifest["splits"]) == set(splits), (manifest["splits"], splits)
        for split, count in splits.items():
            assert sorted(manifest["splits"][split]["files"]) == self.head.shards_of(split)
            assert manifest["splits"][split]["num_examples"] == count
        skipped = {s["id"]: s["reasons"] for s in manifest["skipped"]}
        assert set(skipped) == set(self.published.broken), (skipped, self.published.broken)
        for sid, kind in self.published.broken.items():
            assert any(kind in reason for reason in skipped[sid]), (sid, kind, skipped[sid])
        mismatched = {c["sample"] for c in manifest["corrections"] if c["kind"] == "extension_mismatch"}
        assert mismatched == set(self.published.mislabelled), (
            manifest["corrections"],
            self.published.mislabelled,
        )
        # The card's front matter: what `datasets` opens (every shard, none stale) and its counts.
        meta = yaml.safe_load(self.head.card.split("---\n", 2)[1])
        (config,) = meta["configs"]
        files = {f["split"]: sorted(f["path"]) for f in config["data_files"]}
        assert [f["split"] for f in config["data_files"]] == list(splits), config["data_files"]  # train first
        assert files == {split: self.head.shards_of(split) for split in splits}, files
        info = {split["name"]: split["num_examples"] for split in meta["dataset_info"]["splits"]}
        assert info == splits, (info, splits)
        skipped = {k: v for k, v in self.night["result"]["skipped"].items() if v}
        assert skipped == self.published.broken_by_split(), (skipped, self.published.broken)

    @invariant()
    def a_shard_name_always_names_the_same_bytes(self):
        if self.head is None:
            return
        for path, digest in self.head.shard_digests().items():
            assert self.by_name.setdefault(path, digest) == digest, (
                f"{path} held other bytes before: {self.log}"
            )

    @invariant()
    def staging_keeps_no_copy_after_a_good_night(self):
        if self.head is None or self.failed_before:
            return
        staging = self.staging()
        # No copy of the data; a failed night's sealed shards that no later night took stay for
        # the sweep policy (a week), each with its seal.
        left = {p.name: p for p in staging.rglob("*.parquet")}
        assert set(left) <= self.sealed_by_failures, sorted(set(left) - self.sealed_by_failures)
        assert all(p.with_suffix(".json").exists() for p in left.values())
        runs = staging / "runs"
        assert not runs.exists() or not any(runs.iterdir())
        if isinstance(self.target, LocalTarget):
            assert len(self.target.versions()) <= 2  # "The two newest versions are kept."

    def teardown(self):
        if os.environ.get("HUBPRESS_NIGHTS_VERBOSE"):
            where = "hub" if self.on_hub() else "local"
            layout = (
                f"{self.source.layout}{' s3' if self.in_s3 else ''} {self.source.splits()}"
                if self.source
                else ""
            )
            print(f"\n{layout} {where}: " + "; ".join(self.log))
        # History independence: a first publish of the same source to a fresh target (another
        # cache and staging: another machine) gives the same shard files, by name and bytes.
        if self.head is not None and os.environ.get("HUBPRESS_NIGHTS_FRESH", "1") != "0":
            fresh = self.here / "fresh"
            os.environ["HUBPRESS_STAGING"] = str(fresh / "staging")
            os.environ["HUBPRESS_CACHE_DIR"] = str(fresh / "cache")
            self.upload(fresh / "out")
            first = LocalTarget(fresh / "out").read_head()
            shards = first.shard_digests()
            assert shards == self.head.shard_digests(), (self.log, diff(shards, self.head.shard_digests()))
            # The preview and the manifest's account of the data are the same too.
            assert first.preview == self.head.preview, self.log
            for key in ("files", "splits", "skipped", "corrections"):
                assert first.manifest[key] == self.head.manifest[key], (key, self.log)
            options = {k: v for k, v in self.head.manifest["options"].items() if k != "repo_id"}
            assert {k: v for k, v in first.manifest["options"].items() if k != "repo_id"} == options
        shutil.rmtree(self.here, ignore_errors=True)


def test_night_after_night_the_head_is_the_source_and_costs_what_changed(
    hub, hub_proxy, s3, tmp_path, write_token, monkeypatch
):
    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    monkeypatch.setenv("HUBPRESS_HUB_RETRY_BASE_SECONDS", "0")

    class TheseNights(Nights):
        pass

    TheseNights.hub, TheseNights.proxy, TheseNights.s3, TheseNights.workdir = hub, hub_proxy, s3, tmp_path
    run_state_machine_as_test(TheseNights, settings=NIGHTS)
