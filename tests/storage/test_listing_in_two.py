"""A local listing whose big folders are stat-ed partly by a second process
(hubpress.storage.stat_worker) is the one-process listing: the same entries in the same order,
the same problems, the same columns. Its process starts only for a folder big enough to pay,
and a worker that cannot start, dies or stops answering leaves the listing complete and no
process behind. Here the pieces are tiny, so trees of a few files take the two-process path."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.shards.published import listing_digest
from hubpress.storage import files, stat_worker
from hubpress.storage.files import LocalStorage
from hubpress.storage.listing import Listing

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not files._SCAN_BY_FD, reason="folders held open by descriptor (POSIX)"
)


@contextmanager
def two_processes(
    piece: int = 2, start_from: int = 4, **more: object
) -> Iterator[list[stat_worker.StatWorker]]:
    """Pieces of `piece` names, a process for a folder of `start_from` files; the workers
    started, for the test to look at. `more`: other stat_worker constants, or a StatWorker
    class to start instead."""
    started: list[stat_worker.StatWorker] = []
    worker_class = more.pop("worker_class", stat_worker.StatWorker)
    saved = {name: getattr(stat_worker, name) for name in ("PIECE", "START_FROM", "StatWorker", *more)}
    real_start = stat_worker.StatWorker.start.__func__  # type: ignore[attr-defined]

    class Recorded(worker_class):  # type: ignore[misc,valid-type]
        @classmethod
        def start(cls) -> stat_worker.StatWorker | None:
            worker = real_start(cls)
            if worker is not None:
                started.append(worker)
            return worker

    try:
        stat_worker.PIECE, stat_worker.START_FROM, stat_worker.StatWorker = piece, start_from, Recorded
        for name, value in more.items():
            setattr(stat_worker, name, value)
        yield started
    finally:
        for name, value in saved.items():
            setattr(stat_worker, name, value)


def _same(a: Listing, b: Listing) -> None:
    assert list(a) == list(b)
    assert a.columns() == b.columns()
    assert a.held_whole_at() == b.held_whole_at()


def _one_process(root: Path) -> Listing:
    with two_processes(start_from=10**9) as started:
        listing = LocalStorage(root).listing(report_unlisted=True)
    assert started == []
    return listing


def _all_ended(started: list[stat_worker.StatWorker]) -> bool:
    return all(worker.process.returncode is not None for worker in started)


# A tree: folders (the root, two below it, one below those), each holding a run of plain files
# and other entries whose names fall among them: links, FIFOs, names that are not UTF-8.
kinds = st.sampled_from(["file", "file", "file", "fifo", "dangling", "file-link", "dir-link", "outside"])
other_names = st.sampled_from(
    ["03x.png", "07x.png", "12x", "a b.png", "Z.png", "é.png", "x\udcff.png", "0\udc80", "~.png"]
)
folder_entries = st.tuples(st.integers(0, 30), st.dictionaries(other_names, kinds, max_size=5))
trees = st.dictionaries(st.sampled_from(["", "a", "b", "a/c"]), folder_entries, min_size=1, max_size=4)


def _make(root: Path, outside: Path, tree: dict[str, tuple[int, dict[str, str]]]) -> None:
    root.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"s")
    (root / "first.png").write_bytes(b"f")
    for folder in sorted(tree):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for folder, (plain_files, others) in tree.items():
        entries = {f"{n:02d}.png": "file" for n in range(plain_files)} | others
        for name, kind in entries.items():
            at = os.fsencode(root / folder / name)
            if os.path.lexists(at):
                continue
            if kind == "file":
                with open(at, "wb") as fh:
                    fh.write(b"x" * len(name))
                os.utime(at, ns=(0, 10**18 + len(entries) * 10**9 + len(name)))  # mtime is not ctime
            elif kind == "fifo":
                os.mkfifo(at)
            elif kind == "dangling":
                os.symlink(root / "nowhere", at)
            elif kind == "file-link":
                os.symlink(root / "first.png", at)
            elif kind == "dir-link":
                os.symlink(root / "a", at)
            else:
                os.symlink(outside, at)


@settings(max_examples=60, deadline=None)
@given(trees)
def test_a_tree_listed_in_two_processes_is_its_one_process_listing(tree):
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = Path(tmp) / "root", Path(tmp) / "outside"
        _make(root, outside, tree)
        with two_processes() as started:
            in_two = LocalStorage(root).listing(report_unlisted=True)
        one = _one_process(root)
        _same(in_two, one)
        assert list(in_two) == list(LocalStorage(root).list(report_unlisted=True))
        assert listing_digest(in_two, {}) == listing_digest(one, {})
        assert _all_ended(started)


def _folder(tmp_path: Path, count: int) -> Path:
    root = tmp_path / "root"
    (root / "train").mkdir(parents=True)
    for n in range(count):
        (root / "train" / f"{n:03d}.png").write_bytes(b"x" * n)
        os.utime(root / "train" / f"{n:03d}.png", ns=(0, 10**18 + n))
    return root


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_the_worker_takes_pieces_from_the_front_and_ends_with_the_listing(tmp_path):
    root = _folder(tmp_path, 40)
    before = _open_descriptors()
    with two_processes() as started:
        in_two = LocalStorage(root).listing()
    _same(in_two, _one_process(root))
    [worker] = started
    assert worker.answered >= stat_worker.AHEAD  # the first pieces are sent before the listing takes any
    assert worker.process.returncode is not None
    assert _open_descriptors() == before  # its pipes closed too


def test_a_worker_that_answers_every_piece_gives_the_same_listing(tmp_path):
    root = _folder(tmp_path, 40)
    with two_processes(AHEAD=10**6) as started:  # every piece is sent: the listing only waits
        in_two = LocalStorage(root).listing()
    _same(in_two, _one_process(root))
    assert started[0].answered == 20


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="sets this thread's CPUs (Linux)")
def test_a_listing_that_may_run_on_one_cpu_starts_no_process(tmp_path):
    root = _folder(tmp_path, 40)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        with two_processes() as started:
            on_one = LocalStorage(root).listing()
    finally:
        os.sched_setaffinity(0, cpus)
    assert started == []
    _same(on_one, _one_process(root))


def test_a_small_tree_starts_no_process(tmp_path):
    root = _folder(tmp_path, 99)
    with two_processes(piece=10, start_from=100) as started:
        LocalStorage(root).listing()
    assert started == []
    (root / "train" / "099.png").write_bytes(b"x")
    with two_processes(piece=10, start_from=100) as started:
        LocalStorage(root).listing()
    assert len(started) == 1
    assert stat_worker.START_FROM >= 4 * stat_worker.PIECE >= 8192  # the defaults: a few thousand files never


@pytest.mark.parametrize("missing", [{1}, {0, 5}, {0, 1, 2, 3}, set(range(12))])
def test_a_file_gone_between_the_scan_and_the_workers_stat_is_unlisted_as_in_one_process(tmp_path, missing):
    names = [f"{n:02d}.png" for n in range(12)]
    for n, name in enumerate(names):
        if n not in missing:
            (tmp_path / name).write_bytes(b"x" * n)
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        alone: list[tuple[str, str]] = []
        one = Listing()
        for pre, found, stats in files._stats_of(folder, str(tmp_path), "t/", names, alone):
            one.extend_stats(pre, found, stats)
        for ahead in (3, 10**6):  # the worker stats some pieces, or all
            unlisted: list[tuple[str, str]] = []
            in_two = Listing()
            with two_processes(AHEAD=ahead) as started:
                pieces = files._StatsInTwo()
                try:
                    for pre, found, *columns in pieces.stats_of(folder, str(tmp_path), "t/", names, unlisted):
                        in_two.extend_columns(pre, found, *columns)
                finally:
                    pieces.close()
            assert started[0].answered > 0
            _same(in_two, one)
            assert unlisted == alone
            assert unlisted[0][1] == "cannot be followed (No such file or directory)"
    finally:
        os.close(folder)


def test_the_worker_stats_only_the_folder_the_listing_holds_open(tmp_path):
    """The folder is renamed and another made in its place after the listing opened it: the
    worker does not stat the newcomer's files (it checks the device and inode); the listing
    stats the folder it holds."""
    old = tmp_path / "train"
    old.mkdir()
    names = [f"{n:02d}.png" for n in range(12)]
    for name in names:
        (old / name).write_bytes(b"old")
    folder = os.open(old, os.O_RDONLY | os.O_DIRECTORY)
    try:
        old.rename(tmp_path / "moved")
        old.mkdir()
        for name in names:
            (old / name).write_bytes(b"newcomer")
        one = Listing()
        for pre, found, stats in files._stats_of(folder, str(old), "train/", names, []):
            one.extend_stats(pre, found, stats)
        in_two = Listing()
        with two_processes(AHEAD=10**6) as started:
            pieces = files._StatsInTwo()
            try:
                for pre, found, *columns in pieces.stats_of(folder, str(old), "train/", names, []):
                    in_two.extend_columns(pre, found, *columns)
            finally:
                pieces.close()
        assert started[0].answered == 6  # it answered every piece: "not that folder"
        _same(in_two, one)
        assert {listed.size for listed in in_two} == {3}
    finally:
        os.close(folder)


def test_a_worker_killed_mid_run_leaves_the_listing_complete_and_no_process(tmp_path):
    class KilledAfterItsFirstAnswer(stat_worker.StatWorker):
        def _pump(self) -> None:
            super()._pump()
            if self.answered and self.process.returncode is None and self.alive:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    root = _folder(tmp_path, 80)
    (root / "val").mkdir()
    for n in range(30):
        (root / "val" / f"{n:03d}.png").write_bytes(b"v")
    before = _open_descriptors()
    with two_processes(worker_class=KilledAfterItsFirstAnswer) as started:
        in_two = LocalStorage(root).listing()
    _same(in_two, _one_process(root))
    [worker] = started
    assert 1 <= worker.answered < 40 and not worker.alive
    assert worker.process.returncode == -signal.SIGKILL
    assert _open_descriptors() == before


def test_a_worker_that_stops_answering_is_given_up_and_killed(tmp_path):
    class StoppedAtOnce(stat_worker.StatWorker):
        def __init__(self, process) -> None:
            super().__init__(process)
            os.kill(process.pid, signal.SIGSTOP)

    root = _folder(tmp_path, 40)
    with two_processes(worker_class=StoppedAtOnce, STALLED_AFTER=0.2) as started:
        in_two = LocalStorage(root).listing()
    _same(in_two, _one_process(root))
    [worker] = started
    assert worker.answered == 0 and worker.process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/true", ""])
def test_a_worker_that_cannot_start_or_exits_at_once_leaves_the_listing_to_one_process(
    tmp_path, monkeypatch, executable
):
    root = _folder(tmp_path, 40)
    monkeypatch.setattr(sys, "executable", executable)
    with two_processes() as started:
        in_two = LocalStorage(root).listing()
    _same(in_two, _one_process(root))
    assert all(worker.answered == 0 for worker in started) and _all_ended(started)


def test_a_listing_that_fails_midway_leaves_no_process(tmp_path):
    class Refused(Exception):
        pass

    class FailsAfterAPiece(stat_worker.StatWorker):
        def pieces(self, folder, path, names):
            yield next(super().pieces(folder, path, names))
            raise Refused("the consumer's error")

    root = _folder(tmp_path, 40)
    with two_processes(worker_class=FailsAfterAPiece) as started, pytest.raises(Refused):
        LocalStorage(root).listing()
    assert _all_ended(started) and len(started) == 1


def test_a_flow_lists_its_source_in_two_processes_from_its_task(tmp_path, prefect_harness):
    """The flow lists a source in a Prefect task (tasks/intake.py), beside Prefect's threads: the
    worker is started by fork and exec at once (subprocess), so no thread's lock is copied."""
    from prefect import flow

    from hubpress.tasks.intake import list_source_task

    root = _folder(tmp_path, 40)

    @flow(name="list-in-two")
    def listing_flow(source: str):
        return list_source_task(source).files

    with two_processes() as started:
        in_two = listing_flow(str(root))
    _same(in_two, _one_process(root))
    assert started[0].answered >= stat_worker.AHEAD and _all_ended(started)
