"""The hundredth refresh: an upstream dataset on the test Hub changes night after night (rows
added and removed, a row's image, caption or quality score changed, an upstream file rewritten
with the same rows, a commit that touches no data file, an unchanged night, a refused or lost
commit on the target), and each night hubpress refreshes it into a target (a hypothesis.stateful
machine). After every night hubpress is held to what docs/refresh.md claims:

- the target's head holds exactly the upstream rows that pass the configuration's rules (caption
  and fallback caption, SimpleTuner's quality_thresholds, filter_func's min_width), each with its
  image's bytes and path, caption, size and upstream row (`source_index`), in upstream order; the
  manifest counts what was seen and kept, records the upstream sha, and names exactly the shards;
  simpletuner_index.json maps `{i}.jpg` to row i's upstream row;
- an unchanged upstream stops before any download: nothing committed, sent or downloaded;
- a new upstream commit whose rows are the same (a file rewritten, a README edited) builds,
  sends and replaces no shard; a few rows changed in place rebuild and send only their shards (at
  most two each); rows added or removed at the end touch only the last shards;
- "in time as well as in bytes": the media the run says it read is each kept row of the upstream
  files it had not read before (same bytes, same place, same configuration) once, and the rows of
  the shards it rebuilt once more; a streaming backend reads every kept row;
- the run's counts agree with the Hub's own log (commits, files, bytes);
- a shard name always names the same bytes; a successful night leaves no shard in staging;
- history independence: a first refresh of the final upstream into a fresh target (another cache
  and staging) gives the same shard files, by name and bytes, and the same index.

The upstream's files are written here with pyarrow (datasets' features in the schema), so a night
rewrites exactly the files it changes, as `datasets` does for a large dataset's edited rows.

CI runs a few short examples; hunt with more (the same knobs as test_many_nights.py):
    HUBPRESS_NIGHTS_EXAMPLES=40 HUBPRESS_NIGHTS_STEPS=25 HUBPRESS_NIGHTS_RANDOM=1 \\
        .venv/bin/pytest tests/e2e/test_refresh_nights.py
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.conftest import WRITE_TOKEN, XET
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

REFRESH_NIGHTS = settings(
    NIGHTS, stateful_step_count=int(os.environ.get("HUBPRESS_NIGHTS_STEPS", "5" if XET else "3"))
)
SIZES = ("5KB", "8KB")  # --max-shard-size: shards of a few rows each at 16-24 px
THRESHOLD = 5.0
MIN_WIDTH = 18
STYLES = ((64, "snappy"), (3, "zstd"), (2, "none"))  # row group size and compression of a file


@dataclass(frozen=True)
class UpRow:
    """One upstream row as written: the image (bytes and the path datasets keeps beside them), a
    caption, a fallback caption and an aesthetic score (None: the metric is missing)."""

    image: bytes
    path: str | None
    caption: str | None
    alt: str | None
    score: float | None
    controls: tuple[bytes, ...] = ()  # an editing dataset's control_images (its image: the target)
    ident: str = ""  # an editing dataset's id

    def media_bytes(self) -> int:
        """What a refresh counts as read for the row: 128 bytes and its media (row_size)."""
        return 128 + len(self.image) + sum(len(c) for c in self.controls)


@dataclass
class UpFile:
    """One parquet file of the upstream's train split: its rows and how it is written."""

    name: str  # data/train-NNNN.parquet: the files sort in the dataset's order
    rows: list[UpRow]
    style: int = 0
    sha256: str = ""  # of the bytes last committed

    def data(self, editing: bool) -> bytes:
        from datasets import Dataset, Features, Image, List, Value

        if editing:  # the qflux schema, as publish-dataset writes it
            features = Features(
                {
                    "id": Value("string"),
                    "control_images": List(Image()),
                    "target_image": Image(),
                    "prompt": Value("string"),
                }
            )
            columns = {
                "id": [r.ident for r in self.rows],
                "control_images": [[{"bytes": c, "path": None} for c in r.controls] for r in self.rows],
                "target_image": [{"bytes": r.image, "path": r.path} for r in self.rows],
                "prompt": [r.caption for r in self.rows],
            }
        else:
            features = Features(
                {
                    "image": Image(),
                    "caption": Value("string"),
                    "alt": Value("string"),
                    "quality_assessment": {"aesthetic_score": Value("float64")},
                }
            )
            columns = {
                "image": [{"bytes": r.image, "path": r.path} for r in self.rows],
                "caption": [r.caption for r in self.rows],
                "alt": [r.alt for r in self.rows],
                "quality_assessment": [{"aesthetic_score": r.score} for r in self.rows],
            }
        table = Dataset.from_dict(columns, features=features).data.table
        rows, compression = STYLES[self.style % len(STYLES)]
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=rows, compression=compression)
        return buf.getvalue()


@dataclass(frozen=True)
class Rules:
    """The configuration's rules the machine drew (one huggingface backend)."""

    fallback: bool  # fallback_caption_column: alt
    quality: bool  # filter_func.quality_thresholds: aesthetic_score >= threshold
    min_width: bool  # filter_func.min_width: MIN_WIDTH
    streaming: bool
    threshold: float = THRESHOLD
    two_captions: bool = False  # caption_column: [caption, alt] (published as caption, caption_2)
    editing: bool = False  # an `editing` mapping: the qflux schema in, the qflux schema out

    def keeps(self, row: UpRow) -> tuple[str, ...] | None:
        """The row's published captions (editing: its prompt), or None when a rule leaves it out."""
        caption, alt = (row.caption or "").strip(), (row.alt or "").strip()
        if self.editing:
            return (caption,)  # an empty prompt is kept, as ""
        if self.two_captions:
            captions = tuple(t for t in (caption, alt) if t)
        else:
            captions = tuple(t for t in [caption or (alt if self.fallback else "")] if t)
        if not captions:
            return None
        if self.quality and (row.score is None or row.score < self.threshold):
            return None
        if self.min_width and dimensions(row.image)[0] < MIN_WIDTH:
            return None
        return captions


def dimensions(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


class RefreshNights(RuleBasedStateMachine):
    """Set by the test: the test Hub, its proxy, and a folder for this run's caches and staging."""

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
        self.salt = uuid.uuid4().int % 2**40 * 2**20
        self.upstream = f"alice/upstream-{uuid.uuid4().hex[:8]}"
        self.files: list[UpFile] = []
        self.next_name = 0
        self.rules: Rules | None = None
        self.max_shard_size = SIZES[0]
        self.target: HubTarget | LocalTarget | None = None
        self.head: Head | None = None
        self.upstream_sha: str | None = None
        self.refreshed: tuple | None = None  # the upstream sha and options the head was refreshed from
        self.log: list[str] = []
        self.by_name: dict[str, str] = {}  # every shard name ever published -> its sha256
        self.read_before: set[tuple[str, int, tuple]] = set()  # (file sha256, first row, options)
        self.sealed_by_failures: set[str] = set()
        self.failed_before = False
        self.after_dry = False  # a dry run sealed this night's shards
        self.unpublished_first: int | None = None  # the first upstream row a failed night changed
        self.counter = 0
        self.night: dict = {}
        self.user_text: str | None = None  # a paragraph someone added to the target's card
        self.indices: dict[str, dict[str, int]] = {}  # a head's commit -> its simpletuner_index.json
        self.tags: dict[str, str] = {}  # tags the nights asked for -> the commit each named then
        self.staged_in_s3 = False

    # --- the upstream -------------------------------------------------------------------------

    def api(self):
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.hub.url, token=WRITE_TOKEN)

    def new_row(self, seed: int) -> UpRow:
        self.counter += 1
        n = self.counter
        size = 16 + seed % 9  # 16-24 px: min_width 18 leaves some out
        return UpRow(
            png(self.salt + seed, size),
            f"up/{n}.png" if seed % 2 else None,
            f"row {n} · {seed % 13}" if seed % 5 else "  ",  # a blank caption: the fallback or left out
            f"alt {n}" if seed % 3 else None,
            None if seed % 11 == 0 else float(seed % 9),
            self.controls(seed, 1 + seed % 3 // 2),
            f"r{n:04d}",
        )

    def controls(self, seed: int, count: int) -> tuple[bytes, ...]:
        return tuple(png(self.salt + seed + 5000 + k, 16) for k in range(count)) if self.rules.editing else ()

    def new_file_name(self) -> str:
        self.next_name += 10
        return f"data/train-{self.next_name:05d}.parquet"

    def commit_upstream(self, changed: list[UpFile], deleted: list[str], what: str) -> None:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        operations = []
        for f in changed:
            data = f.data(self.rules.editing)
            f.sha256 = sha(data)
            operations.append(CommitOperationAdd(f.name, data))
        operations += [CommitOperationDelete(name) for name in deleted]
        info = self.api().create_commit(self.upstream, operations, commit_message=what, repo_type="dataset")
        self.upstream_sha = info.oid

    def rows(self) -> list[UpRow]:
        return [r for f in self.files for r in f.rows]

    def place(self, index: int) -> tuple[UpFile, int]:
        """The file holding the upstream row at `index`, and the row's place in it."""
        for f in self.files:
            if index < len(f.rows):
                return f, index
            index -= len(f.rows)
        raise IndexError(index)

    # --- what a refresh must publish ------------------------------------------------------------

    def expected(self) -> dict[int, tuple]:
        """source_index -> (captions, image path, image sha256, width, height), upstream order."""
        out = {}
        for i, row in enumerate(self.rows()):
            captions = self.rules.keeps(row)
            if captions is None:
                continue
            if self.rules.editing:
                out[i] = (captions, row.path, sha(row.image), tuple(sha(c) for c in row.controls))
            else:
                out[i] = (captions, row.path, sha(row.image), *dimensions(row.image))
        return out

    def options_key(self) -> tuple:
        return (self.rules, self.max_shard_size)

    def unread_media(self) -> int:
        """The media bytes a refresh reads in its first pass: each kept row (128 bytes of overhead
        and its image) of every file it has no facts for (docs/refresh.md)."""
        total, base = 0, 0
        for f in self.files:
            if self.rules.streaming or (f.sha256, base, self.options_key()) not in self.read_before:
                total += sum(r.media_bytes() for r in f.rows if self.rules.keeps(r) is not None)
            base += len(f.rows)
        return total

    def note_read(self) -> None:
        if self.rules.streaming:
            return
        base = 0
        for f in self.files:
            self.read_before.add((f.sha256, base, self.options_key()))
            base += len(f.rows)

    # --- the nights ---------------------------------------------------------------------------

    @initialize(
        where=st.sampled_from(["hub", "hub", "local"]),
        files=st.integers(2, 4),
        per_file=st.integers(3, 8),
        fallback=st.booleans(),
        quality=st.booleans(),
        min_width=st.booleans(),
        streaming=st.sampled_from([False, False, True]),
        s3_staging=st.sampled_from([False, False, True]),
        captions=st.sampled_from(["one", "one", "two", "editing"]),
        seed=st.integers(0, 2**16),
    )
    def first_night(
        self, where, files, per_file, fallback, quality, min_width, streaming, s3_staging, captions, seed
    ):
        if captions == "editing":  # no caption or filter rules: every row with its images is kept
            self.rules = Rules(False, False, False, streaming, editing=True)
        else:
            two = captions == "two"
            self.rules = Rules(fallback and not two, quality, min_width, streaming, two_captions=two)
        if s3_staging and self.s3 is not None:  # the shard store on S3 (moto's server)
            self.staged_in_s3 = True
            os.environ["HUBPRESS_STAGING"] = f"s3://{self.s3[1]}/{self.here.name}/staging"
        self.api().create_repo(self.upstream, repo_type="dataset", private=True)
        for i in range(files):
            rows = [self.new_row(seed + 7 * i + j) for j in range(per_file)]
            self.files.append(UpFile(self.new_file_name(), rows, style=seed % 3))
        self.commit_upstream(self.files, [], "first")
        self.target = HubTarget(self.hub, self.proxy) if where == "hub" else LocalTarget(self.here / "out")
        self.refresh("first")

    def on_hub(self) -> bool:
        return isinstance(self.target, HubTarget)

    @rule(
        count=st.integers(1, 3),
        where=st.sampled_from(["end", "new_file", "first_file"]),
        seed=st.integers(0, 2**16),
    )
    def add_rows(self, count, where, seed):
        rows = [self.new_row(seed + i) for i in range(count)]
        first = len(self.rows()) if where != "first_file" else len(self.files[0].rows)
        if where == "new_file":
            self.files.append(UpFile(self.new_file_name(), rows, style=seed % 3))
            changed = self.files[-1]
        else:
            changed = self.files[-1] if where == "end" else self.files[0]
            changed.rows.extend(rows)
        self.commit_upstream([changed], [], f"add {count} at {where}")
        self.refresh("shift", f"add {count} rows ({where})", first_changed=first)

    @precondition(lambda self: len(self.rows()) > 4)
    @rule(data=st.data())
    def remove_row(self, data):
        index = data.draw(st.integers(0, len(self.rows()) - 1))
        f, at = self.place(index)
        del f.rows[at]
        if f.rows:
            self.commit_upstream([f], [], f"remove row {index}")
        else:
            self.files.remove(f)
            self.commit_upstream([], [f.name], f"remove row {index}, its file")
        self.refresh("shift", f"remove row {index}", first_changed=index)

    @rule(
        data=st.data(),
        seed=st.integers(0, 2**16),
        what=st.sampled_from(["image", "caption", "score", "blank caption", "path", "controls"]),
        count=st.integers(1, 2),
    )
    def change_rows(self, data, seed, what, count):
        """A few rows changed in place: each changed row's shard and at most the next rebuild."""
        touched, indices = [], []
        if what == "controls" and not self.rules.editing:
            what = "image"  # only an editing dataset has controls
        for k in range(count):
            index = data.draw(st.integers(0, len(self.rows()) - 1))
            f, at = self.place(index)
            row = f.rows[at]
            if what == "image":
                row = replace(row, image=png(self.salt + seed + k, 16 + (seed + k) % 9))
            elif what == "caption":
                row = replace(row, caption=f"changed {seed + k}")
            elif what == "blank caption":
                row = replace(row, caption="\t")
            elif what == "path":
                row = replace(row, path=None if row.path else f"renamed/{seed}.png")
            elif what == "controls":  # an editing row's controls: another, or one more or fewer
                row = replace(row, controls=self.controls(seed + k, 1 + (seed + k) % 3))
            else:
                row = replace(row, score=float((seed + k) % 9))
            f.rows[at] = row
            indices.append(index)
            if f not in touched:
                touched.append(f)
        self.commit_upstream(touched, [], f"change {what} of rows {indices}")
        self.refresh(
            "local",
            f"change {what} of rows {indices}",
            changed_rows=len(set(indices)),
            first_changed=min(indices),
        )

    @rule(data=st.data(), style=st.integers(0, 2))
    def rewrite_a_file_with_the_same_rows(self, data, style):
        """A file written again with the same rows (another row-group size or compression): a new
        upstream commit, new file bytes, the same published rows."""
        f = data.draw(st.sampled_from(self.files))
        f.style = style if style != f.style % len(STYLES) else style + 1
        self.commit_upstream([f], [], f"rewrite {f.name}")
        self.refresh("same rows", f"rewrite {f.name} (style {f.style})")

    @rule(path=st.sampled_from(["notes.md", "docs/notes.txt"]))
    def commit_without_data(self, path):
        """A new upstream commit that touches no data file (a notes file): the same rows."""
        from huggingface_hub import CommitOperationAdd

        info = self.api().create_commit(
            self.upstream,
            [CommitOperationAdd(path, f"night {len(self.log)}\n".encode())],
            commit_message="notes",
            repo_type="dataset",
        )
        self.upstream_sha = info.oid
        self.refresh("same rows", f"{path} edited")

    @rule()
    def unchanged_night(self):
        self.refresh("unchanged")

    @precondition(lambda self: self.rules.quality)
    @rule(threshold=st.sampled_from([3.0, THRESHOLD, 7.0]))
    def change_the_quality_threshold(self, threshold):
        self.rules = replace(self.rules, threshold=threshold)
        self.refresh("global", f"quality threshold {threshold}")

    @rule(data=st.data(), seed=st.integers(0, 2**16))
    def dry_run_then_refresh(self, data, seed):
        """A row's caption changed; a dry run plans and builds (nothing sent, nothing committed),
        then the refresh takes the dry run's sealed shards and builds nothing."""
        index = data.draw(st.integers(0, len(self.rows()) - 1))
        f, at = self.place(index)
        f.rows[at] = replace(f.rows[at], caption=f"dry night {seed}")
        self.commit_upstream([f], [], f"caption of row {index}")
        self.hub.reset_stats()
        before = self.target.read_head()
        dry = self.run(str(self.target.name), self.here / "cache", dry_run=True)
        assert dry["commit"] is None and self.target.read_head() == before, dry
        if self.on_hub():
            assert self.hub.stats.commits == 0 and self.hub.stats.upload_bytes == 0, self.hub.stats.as_dict()
        self.note_read()
        self.after_dry = dry["shards_built"] > 0
        self.refresh(
            "local", f"caption of row {index} (after a dry run)", changed_rows=1, first_changed=index
        )

    @precondition(lambda self: self.on_hub() and self.head is not None and len(self.head.shards) > 1)
    @rule(data=st.data(), seed=st.integers(0, 2**16))
    def a_shard_lost_from_the_target(self, data, seed):
        """Someone deletes a shard from the target, then the upstream's last row changes: the
        refresh holds the target to its manifest's files and sends the lost shard again."""
        from huggingface_hub import CommitOperationDelete

        lost = data.draw(st.sampled_from(sorted(self.head.shards)))
        self.api().create_commit(
            self.target.name, [CommitOperationDelete(lost)], commit_message="oops", repo_type="dataset"
        )
        self.head = self.target.read_head()
        index = len(self.rows()) - 1
        f, at = self.place(index)
        f.rows[at] = replace(f.rows[at], caption=f"last row {seed}")
        self.commit_upstream([f], [], f"caption of row {index}")
        self.refresh("repair", f"{lost} deleted from the target, row {index} changed", first_changed=index)

    @precondition(lambda self: self.on_hub())
    @rule(data=st.data(), change=st.booleans(), taken=st.booleans())
    def a_tagged_night(self, data, change, taken):
        """A scheduled refresh that tags what it publishes (--tag): a new tag names the new head, or
        the unchanged head; a tag that names another commit stops the run before any commit."""
        if change:
            index = data.draw(st.integers(0, len(self.rows()) - 1))
            f, at = self.place(index)
            f.rows[at] = replace(f.rows[at], caption=f"tagged night {len(self.log)}")
            self.commit_upstream([f], [], f"caption of row {index}")
            first = index if self.unpublished_first is None else min(index, self.unpublished_first)
        others = sorted(tag for tag, commit in self.tags.items() if commit != self.head.commit)
        if not (taken and others):
            tag = f"night-{len(self.log)}"
            self.refresh("local" if change else "unchanged", f"tagged {tag}", tag=tag, changed_rows=1)
            return
        tag = data.draw(st.sampled_from(others))
        self.log.append(f"failed: tag {tag} is taken")
        before = self.target.read_head()
        self.hub.reset_stats()
        with pytest.raises(Exception, match="already exists") as caught:
            self.run(str(self.target.name), self.here / "cache", tag=tag)
        assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value), str(caught.value)
        assert self.target.read_head() == before and self.hub.stats.commits == 0, self.hub.stats.as_dict()
        self.note_read()
        self.failed_before = True
        self.sealed_by_failures |= self.staged_shards()
        if change:  # upstream, not yet published
            self.unpublished_first = first

    def refused_as_empty(self, what: str) -> None:
        """The rules leave no row: the refresh stops before any commit, in one line (docs/refresh.md,
        Empty splits), and the head keeps the last good night's rows."""
        self.log.append(f"refused: {what} (every row left out)")
        before = self.target.read_head()
        with pytest.raises(Exception, match="Refusing to publish an empty split") as caught:
            self.run(str(self.target.name), self.here / "cache")
        assert "\n" not in str(caught.value) and "nothing was committed" in str(caught.value)
        assert self.target.read_head() == before
        self.note_read()
        self.failed_before = True
        self.sealed_by_failures |= self.staged_shards()
        self.unpublished_first = 0  # whatever changed is published on a later night

    @invariant()
    def a_tag_is_never_moved(self):
        for tag, commit in self.tags.items():
            assert self.hub.head("dataset", self.target.name, tag) == commit, (tag, self.log)

    @precondition(lambda self: self.on_hub() and self.head is not None)
    @rule(text=st.sampled_from(["Thanks to the photographers.", "Ask before you use it — merci."]))
    def someone_edits_the_card(self, text):
        """A person adds a paragraph below the generated part of the target's card and a key to its
        YAML: nothing changed upstream, so nothing is committed; every later refresh keeps both."""
        from huggingface_hub import CommitOperationAdd

        _, meta, body = self.head.card.split("---\n", 2)
        card = f"---\n{meta}user_note: {text}\n---\n{body.rstrip()}\n\n{text}\n"
        self.api().create_commit(
            self.target.name,
            [CommitOperationAdd("README.md", card.encode())],
            commit_message="a note",
            repo_type="dataset",
        )
        self.user_text = text
        self.head = self.target.read_head()
        self.refresh("unchanged", f"card edited: {text!r}")

    @rule(size=st.sampled_from(SIZES))
    def change_max_shard_size(self, size):
        same = size == self.max_shard_size
        self.max_shard_size = size
        self.refresh("unchanged" if same else "global", f"--max-shard-size {size}")

    @precondition(lambda self: self.on_hub())
    @rule(
        data=st.data(),
        seed=st.integers(0, 2**16),
        how=st.sampled_from(["refused", "down", "lost"]),
        then=st.sampled_from(["again", "undone"]),
    )
    def target_commit_refused_or_lost(self, data, seed, how, then):
        """An upstream row changed, and the target's Hub refuses the refresh's commit, keeps failing,
        or applies it without an answer; then the same night again, or the change undone upstream."""
        index = data.draw(st.integers(0, len(self.rows()) - 1))
        f, at = self.place(index)
        before = f.rows[at]
        f.rows[at] = replace(before, caption=f"faulty night {seed}")
        self.commit_upstream([f], [], f"caption of row {index}")
        commit = rf"^POST /api/datasets/{self.target.name}/commit/"
        if how == "refused":
            self.proxy.answer(commit, 400, {"error": "Refused by the night's fault"})
        elif how == "down":
            self.proxy.answer(commit, 500, {"error": "Down for the night"}, count=50)
        else:
            self.proxy.lose_answer(commit)
        self.refresh(
            "local", f"caption of row {index}, commit {how}", fault=how, changed_rows=1, first_changed=index
        )
        self.proxy.clear()
        if then == "again":
            self.refresh("again", "the same again")
        else:
            f.rows[at] = before
            self.commit_upstream([f], [], f"row {index} as it was")
            self.refresh("local", f"row {index} as it was", changed_rows=1, first_changed=index)

    # --- one night ----------------------------------------------------------------------------

    def config(self, cache: Path) -> list[dict]:
        rules = self.rules
        huggingface: dict = {"caption_column": ["caption", "alt"] if rules.two_captions else "caption"}
        if rules.fallback:
            huggingface["fallback_caption_column"] = "alt"
        filters: dict = {}
        if rules.quality:
            filters["quality_thresholds"] = {"aesthetic_score": rules.threshold}
        if rules.min_width:
            filters["min_width"] = MIN_WIDTH
        if filters:
            huggingface["filter_func"] = filters
        backend = {
            "id": "up",
            "type": "huggingface",
            "dataset_name": self.upstream,
            "split": "train",
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "huggingface": huggingface,
            "streaming": rules.streaming,
            "cache_dir": str(cache),
            "repeats": 2,  # a training key: carried into the published entry
        }
        if rules.editing:  # a dataset hubpress published, refreshed as docs/refresh-semantics.md says
            del backend["huggingface"]
            backend["editing"] = {
                "control_columns": ["control_images"],
                "target_column": "target_image",
                "prompt_column": "prompt",
                "id_column": "id",
            }
        return [backend]

    def run(self, target, cache: Path, **options) -> dict:
        from hubpress.api import refresh_dataset

        return refresh_dataset(self.config(cache), target, max_shard_size=self.max_shard_size, **options)

    def staged_shards(self) -> set[str]:
        """The parquet files in staging (local or on S3), by name."""
        staging = os.environ["HUBPRESS_STAGING"]
        if not staging.startswith("s3://"):
            return {p.name for p in Path(staging).rglob("*.parquet")}
        import boto3

        bucket, _, prefix = staging.removeprefix("s3://").partition("/")
        pages = boto3.client("s3", endpoint_url=self.s3[0]).get_paginator("list_objects_v2")
        return {
            o["Key"].rsplit("/", 1)[1]
            for page in pages.paginate(Bucket=bucket, Prefix=prefix + "/")
            for o in page.get("Contents", [])
            if o["Key"].endswith(".parquet")
        }

    def refresh(
        self,
        kind: str,
        what: str = "",
        fault: str | None = None,
        changed_rows: int = 0,
        first_changed: int | None = None,
        tag: str | None = None,
    ) -> None:
        if (self.upstream_sha, self.options_key()) == self.refreshed:
            kind = "unchanged"  # the upstream and the configuration are as the target records them
        elif kind == "unchanged":
            kind = "global"  # something changed since the last refresh that committed
        elif kind in ("local", "shift") and self.expected() == self.night.get("expected"):
            kind = "same rows"  # the change left the published rows as they were (a dropped row changed)
        elif kind in ("local", "same rows") and self.night:
            # A failed night's change is still upstream, unpublished: it is part of this night's.
            old, new = self.night["expected"], self.expected()
            pending = sum(1 for i in set(old) | set(new) if old.get(i) != new.get(i))
            kind, changed_rows = ("local", max(changed_rows, pending)) if pending else (kind, changed_rows)
        if first_changed is not None and self.unpublished_first is not None:
            first_changed = min(first_changed, self.unpublished_first)
        if not self.expected():
            self.refused_as_empty(what)
            return
        self.log.append(f"{kind}: {what}")
        started = time.monotonic()
        self.hub.reset_stats()
        before = self.head
        unread = self.unread_media()
        try:
            result = self.run(str(self.target.name), self.here / "cache", **({"tag": tag} if tag else {}))
        except Exception as exc:
            if fault not in ("refused", "down"):
                raise
            result, error = None, exc
        else:
            error = None
        stats = self.hub.stats
        self.log[-1] += f" [{time.monotonic() - started:.1f}s]"
        if fault in ("refused", "down"):
            assert error is not None, f"the Hub refused the commit, but the refresh said {result}"
            assert "Traceback" not in str(error)
            assert self.target.read_head() == before  # the head is the last good night's
            self.note_read()
            self.failed_before = True
            self.sealed_by_failures |= self.staged_shards()
            return
        self.head = self.target.read_head()
        self.night = {
            "kind": kind,
            "result": result,
            "stats": stats,
            "before": before,
            "fault": fault,
            "unread": unread,
            "changed_rows": changed_rows,
            "expected": self.expected(),
            "first_changed": first_changed,
            "seen": len(self.rows()),
            "upstream_sha": self.upstream_sha,
        }
        self.check_night()
        self.refreshed = (self.upstream_sha, self.options_key())
        if tag:  # a new tag names the new head, or the head a nothing-changed night left in place
            assert self.hub.head("dataset", self.target.name, tag) == self.head.commit, (tag, result)
            self.tags[tag] = self.head.commit
        self.note_read()
        self.failed_before = self.after_dry = False
        self.unpublished_first = None

    # --- what every night must leave ----------------------------------------------------------

    def check_night(self) -> None:
        night, result, stats = self.night, self.night["result"], self.night["stats"]
        before: Head | None = night["before"]
        head = self.head
        if night["kind"] == "unchanged":
            # Nothing changed upstream: one question per backend, then stop (docs/refresh.md).
            assert result["nothing_changed"] and result["commit"] is None, (self.log[-1], result)
            assert head == before
            assert result["uploaded_files"] == []
            if self.on_hub():
                assert stats.commits == 0 and stats.upload_bytes == 0, stats.as_dict()
                # No upstream download: the one file read is the target's manifest.json.
                manifest = len(self.read("manifest.json"))
                assert stats.download_bytes <= manifest, (stats.as_dict(), manifest)
            return
        assert not result["nothing_changed"], (self.log[-1], result)
        sent = set(head.shards) - set(before.shards) if before else set(head.shards)
        gone = set(before.shards) - set(head.shards) if before else set()
        if night["fault"] != "lost":
            assert result["commit"] == head.commit, (result["commit"], head.commit)
            assert result["shards"] == len(head.shards)
            assert {p for p in result["uploaded_files"] if p.startswith("data/")} == sent, (
                self.log[-1],
                result["uploaded_files"],
                sorted(sent),
            )
            assert result["shards_sent"] == len(sent)
            assert result["shards_built"] + result["shards_reused_from_stage"] == len(sent), (result, sent)
            if night["kind"] == "again" or self.after_dry:
                assert result["shards_built"] == 0, result  # the failed night or dry run built them all
            elif not self.failed_before:
                assert result["shards_reused_from_stage"] == 0, result
            # In time as well as in bytes: the media read is each kept row of the files not read
            # before, and the rows of the rebuilt shards once more.
            rebuilt = sum(
                self.rows()[i].media_bytes() for path in sent for i in self.source_indices(head)[path]
            )
            if before is None:
                rebuilt = 0  # a first refresh writes each shard as it reads its rows
            elif result["shards_built"] == 0:
                rebuilt = 0
            if before is None or not (result["shards_built"] and result["shards_reused_from_stage"]):
                assert result["source_bytes_read"] == night["unread"] + rebuilt, (
                    self.log[-1],
                    result["source_bytes_read"],
                    night["unread"],
                    rebuilt,
                )
            if self.on_hub():
                assert stats.commits == 1, stats.as_dict()
                # Bytes the Hub never held must cross. An editing row's upstream row is in its
                # shard's key but not in its bytes: a shard may come back under another name.
                held = set(self.by_name.values())
                new = {p for p in sent if p not in self.by_name and sha(head.shards[p]) not in held}
                failed = {name[:16] for name in self.sealed_by_failures}
                new = {p for p in new if p.rsplit("-", 1)[1][:16] not in failed}
                received = files_received(stats)
                assert len(new) <= received <= len(result["uploaded_files"]), (stats.as_dict(), sent)
        if night["kind"] == "same rows":
            # The upstream's sha moved, its rows did not: no shard built, sent or replaced.
            assert sent == set() and gone == set(), (self.log[-1], sorted(sent), sorted(gone))
            assert result["shards_built"] == 0, result
            if self.on_hub():
                assert no_file_content_received(stats, 4096), stats.as_dict()  # the manifest and card only
        elif night["kind"] in ("local", "again") and before is not None:
            k = max(night["changed_rows"], 1)
            assert len(gone) <= 2 * k and len(sent) <= 2 * k, (self.log[-1], sorted(gone), sorted(sent))
        elif night["kind"] == "repair":
            # The lost shard and the changed row's (and at most the next): nothing else.
            assert len(sent) <= 3, (self.log[-1], sorted(sent))
        if night["first_changed"] is not None and before is not None:
            # A shard whose rows all come before the first changed upstream row stays, but the last
            # (it ends where the rows end, not at a boundary of its own).
            held = self.source_indices(before)
            last = max(held, key=lambda path: max(held[path]))
            for path, indices in held.items():
                if max(indices) < night["first_changed"] and path != last:
                    assert path in head.shards, (self.log[-1], path, indices)

    @invariant()
    def head_holds_exactly_the_kept_rows(self):
        if self.head is None:
            return
        rows, order = {}, []
        indices = self.source_indices(self.head)  # simpletuner_index.json: published row -> upstream row
        for path in self.head.manifest["splits"]["train"]["files"]:
            table = pq.read_table(io.BytesIO(self.head.shards[path])).to_pylist()
            assert len(table) == len(indices[path]), (path, len(table), self.head.manifest["files"][path])
            for i, row in zip(indices[path], table, strict=True):
                assert i not in rows, f"row {i} twice"
                if self.rules.editing:
                    target = row["target_image"]
                    assert row["control_mask"] is None and row["id"] == self.rows()[i].ident
                    controls = tuple(sha(c["bytes"]) for c in row["control_images"])
                    rows[i] = ((row["prompt"],), target["path"], sha(target["bytes"]), controls)
                else:
                    assert row["source_index"] == i, (path, row["source_index"], i)
                    image = row["image"]
                    captions = tuple(row[c] for c in ("caption", "caption_2") if row.get(c) is not None)
                    rows[i] = (captions, image["path"], sha(image["bytes"]), row["width"], row["height"])
                order.append(i)
        expected = self.night["expected"]
        assert rows == expected, (self.log, diff(rows, expected))
        assert order == sorted(order), "rows out of upstream order"

    def source_indices(self, head: Head) -> dict[str, list[int]]:
        """Each shard's upstream rows, from the head's simpletuner_index.json (`{n}.jpg` is published
        row n) and its manifest's shards in order with their row counts."""
        if head.commit not in self.indices:
            self.indices[head.commit] = json.loads(self.read("simpletuner_index.json", head))["source_index"]
        index, out, n = self.indices[head.commit], {}, 0
        for path in head.manifest["splits"]["train"]["files"]:
            count = head.manifest["files"][path]["num_rows"]
            out[path] = [index[f"{k}.jpg"] for k in range(n, n + count)]
            n += count
        assert n == len(index), (n, len(index))
        return out

    def read(self, path: str, head: Head | None = None) -> bytes:
        """A file of the target's head (or of an earlier head on the Hub)."""
        if self.on_hub():
            return self.hub.read_file("dataset", self.target.name, path, (head or self.head).commit)
        assert head is None or head.commit == self.head.commit, (
            "a local target keeps its newest versions only"
        )
        return (self.target.folder / path).read_bytes()

    @invariant()
    def the_manifest_names_the_shards_the_counts_and_the_upstream(self):
        if self.head is None:
            return
        manifest = self.head.manifest
        data = {p: e for p, e in manifest["files"].items() if p.startswith("data/")}
        assert {p: e["sha256"] for p, e in data.items()} == self.head.shard_digests()
        assert all(e["size"] == len(self.head.shards[p]) for p, e in data.items())
        assert sorted(manifest["splits"]["train"]["files"]) == sorted(self.head.shards)
        expected = self.night["expected"]
        assert manifest["splits"]["train"]["num_examples"] == len(expected)
        counts = manifest["counts"]["up"]
        assert (counts["seen"], counts["kept"]) == (self.night["seen"], len(expected)), counts
        assert manifest["upstream"]["up"]["revision_sha"] == self.night["upstream_sha"]
        entry = json.loads(self.read("simpletuner_dataloader.json"))[0]
        assert entry["repeats"] == 2 and entry["type"] == "huggingface"

    @invariant()
    def the_card_keeps_what_people_wrote(self):
        if self.head is None or self.user_text is None:
            return
        meta = yaml.safe_load(self.head.card.split("---\n", 2)[1])
        assert meta.get("user_note") == self.user_text, meta
        assert self.head.card.rstrip().endswith(self.user_text), self.head.card[-300:]

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
        left = self.staged_shards()
        assert left <= self.sealed_by_failures, sorted(left - self.sealed_by_failures)

    def teardown(self):
        if os.environ.get("HUBPRESS_NIGHTS_VERBOSE"):
            where = "hub" if self.on_hub() else "local"
            print(
                f"\n{self.rules} {where}{' s3-staging' if self.staged_in_s3 else ''}: " + "; ".join(self.log)
            )
        # History independence: a first refresh of the final upstream into a fresh target (another
        # cache and staging: another machine) gives the same shard files and index.
        if self.head is not None and self.expected() and os.environ.get("HUBPRESS_NIGHTS_FRESH", "1") != "0":
            fresh = self.here / "fresh"
            os.environ["HUBPRESS_STAGING"] = str(fresh / "staging")
            os.environ["HUBPRESS_CACHE_DIR"] = str(fresh / "cache")
            self.run(str(fresh / "out"), fresh / "cache")
            first = LocalTarget(fresh / "out").read_head()
            assert first.shard_digests() == self.head.shard_digests(), (
                self.log,
                diff(first.shard_digests(), self.head.shard_digests()),
            )
            assert (fresh / "out" / "simpletuner_index.json").read_bytes() == self.read(
                "simpletuner_index.json"
            )
            for key in ("splits", "counts", "upstream"):
                assert first.manifest[key] == self.head.manifest[key], (key, self.log)
        shutil.rmtree(self.here, ignore_errors=True)


def test_night_after_night_a_refresh_publishes_the_upstream_and_costs_what_changed(
    hub, hub_proxy, s3, tmp_path, write_token, monkeypatch
):
    from hypothesis.stateful import run_state_machine_as_test

    monkeypatch.setenv("HUBPRESS_HUB_ENDPOINT", hub_proxy.url)
    monkeypatch.setenv("HUBPRESS_HUB_RETRY_BASE_SECONDS", "0")

    class TheseNights(RefreshNights):
        pass

    TheseNights.hub, TheseNights.proxy, TheseNights.s3, TheseNights.workdir = hub, hub_proxy, s3, tmp_path
    run_state_machine_as_test(TheseNights, settings=REFRESH_NIGHTS)
