"""The local listing's second process: it `stat`s a big folder's files beside the listing's own
process, so a listing of millions of files uses the machine's second core.

A folder's regular files are scanned and sorted by the listing (hubpress.storage.files), then
stat-ed in pieces of PIECE names. The pieces go to this process from the front, a few ahead of
what it has answered; the listing stats the pieces nobody was sent itself, from the back, and
meets the worker's answers in the middle. Nothing is waited for while the listing has a piece
of its own to do, and a piece is only ever done by one side: the listing is the one-process
listing, entry for entry (tests/storage/test_listing_in_two.py).

The process is a fresh interpreter running this file as a script (`python -I -S`: no site, no
hubpress, stdlib only), started through subprocess, which execs at once: no fork of a process
whose threads (a Prefect task's, the CLI's) hold locks, and no re-import of the caller's main
module, which multiprocessing's spawn and forkserver do. It is started only for a folder of
START_FROM files or more (a start costs about 20 ms of the other core; START_FROM files take
about 0.1 s to stat), where the listing may run on two CPUs or more, at most once a listing, and killed when the listing ends, whatever way it
ends. A worker that cannot start, dies, is killed or stops answering leaves its pieces to the
listing, which then completes alone.

The messages are marshal'd, each behind its length: to the worker (run, piece, folder path,
folder st_dev, st_ino, the piece's names joined by NUL), path and names as os.fsencode gives them; back, (run, piece, answer), the answer being None when the worker
could not open that very folder (it checks the device and inode the listing holds open) or a
number did not fit the columns, else the (index, why) of each name it could not stat and the
found files' sizes, mtimes, ctimes and inodes as int64 bytes.
"""

from __future__ import annotations

import marshal
import os
import select
import struct
import subprocess
import sys
from array import array
from collections.abc import Iterator
from operator import attrgetter

PIECE = 8192  # names stat-ed at a time by either side (about 25 ms of stat)
START_FROM = 4 * PIECE  # a folder's files that pay for starting the process
AHEAD = 3  # pieces sent and not yet answered: the worker never waits for the next
STALLED_AFTER = 10.0  # seconds without a word from a worker the listing waits on: it is given up
_LENGTH = struct.Struct("<Q")
_SIZE, _MTIME = attrgetter("st_size"), attrgetter("st_mtime_ns")
_CTIME, _INODE = attrgetter("st_ctime_ns"), attrgetter("st_ino")
# A piece's names go as one string of them joined by NUL (which no name holds), encoded as
# os.fsencode encodes each: the worker stats the bytes os.stat would have made of each name.
_FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
_PIPE_BYTES = 1 << 20  # a few pieces' names or answers fit in the pipes without a write blocking

Columns = tuple[array, array, array, array]  # sizes, mtimes, ctimes, inodes
# A piece's outcome: the names found, their columns (or their stats, where a number does not fit
# the columns), and the (name, why) of each name that could not be stat-ed.
Piece = tuple[list[str], Columns | list[os.stat_result], list[tuple[str, str]]]


def cpus_usable() -> int:
    """The CPUs this thread may run on: with one, a second process only takes turns with the
    listing (validation's default_workers counts them the same way)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def stat_piece(
    folder: int, names: list[str] | list[bytes]
) -> tuple[list[tuple[int, str]], list[os.stat_result]]:
    """(the index and why of each name that cannot be stat-ed, the others' stats in order): each
    name's lstat in the folder held open as `folder`, as the one-process listing takes it."""
    stat = os.stat
    try:
        return [], [stat(name, dir_fd=folder, follow_symlinks=False) for name in names]
    except OSError:  # one of them is gone: each on its own, in order
        missing: list[tuple[int, str]] = []
        stats: list[os.stat_result] = []
        for n, name in enumerate(names):
            try:
                stats.append(stat(name, dir_fd=folder, follow_symlinks=False))
            except OSError as exc:
                missing.append((n, exc.strerror or str(exc)))
        return missing, stats


def columns_of(stats: list[os.stat_result]) -> Columns | None:
    """The stats' sizes, mtimes, ctimes and inodes as int64 columns; None if one does not fit."""
    try:
        return (
            array("q", map(_SIZE, stats)),
            array("q", map(_MTIME, stats)),
            array("q", map(_CTIME, stats)),
            array("q", map(_INODE, stats)),
        )
    except OverflowError:
        return None


def _read_exactly(fd: int, size: int) -> bytes:
    parts = []
    while size:
        part = os.read(fd, min(size, _PIPE_BYTES))
        if not part:
            raise EOFError
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _serve(requests: int, answers: int) -> None:
    """Answer each request on `requests` on `answers`, in order, until the listing hangs up."""
    held: tuple[str, int, int] | None = None
    folder: int | None = None
    while True:
        try:
            (size,) = _LENGTH.unpack(_read_exactly(requests, _LENGTH.size))
            run, piece, path, dev, ino, joined = marshal.loads(_read_exactly(requests, size))
            names = joined.split(b"\0")  # stat-ed as bytes: what os.stat makes of the listing's str
        except EOFError:
            return
        if held != (path, dev, ino):
            if folder is not None:
                os.close(folder)
            held, folder = (path, dev, ino), None
            try:
                folder = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
                st = os.fstat(folder)
                if (st.st_dev, st.st_ino) != (dev, ino):  # not the folder the listing holds
                    os.close(folder)
                    folder = None
            except OSError:
                folder = None
        answer = None
        if folder is not None:
            missing, stats = stat_piece(folder, names)
            columns = columns_of(stats)
            if columns is not None:
                answer = (missing, *(column.tobytes() for column in columns))
        message = marshal.dumps((run, piece, answer))
        _write_all(answers, _LENGTH.pack(len(message)) + message)


class StatWorker:
    """The listing's handle on its second process (see the module docstring)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self._to, self._from = process.stdin.fileno(), process.stdout.fileno()
        for fd in (self._to, self._from):
            os.set_blocking(fd, False)
            try:  # Linux: room for a few pieces each way (64 KB is a third of one piece's names)
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
            except (ImportError, AttributeError, OSError):
                pass
        self.alive = True
        self._run = 0
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._answers: list[tuple[int, object]] = []  # (piece, answer) of the current run
        self.answered = 0  # pieces it stat-ed, all runs: what it took off the listing

    @classmethod
    def start(cls) -> StatWorker | None:
        """A started worker, or None when this interpreter cannot start one."""
        if not sys.executable or not hasattr(os, "O_DIRECTORY"):
            return None
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            return None
        return cls(process)

    def stop(self) -> None:
        """Kill the process and reap it: nothing of it outlives the listing."""
        self.alive = False
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    def pieces(self, folder: int, path: str, names: list[str]) -> Iterator[Piece]:
        """Each piece of `names` (files of the folder held open as `folder`, at `path`), in
        order, as soon as it and those before it are stat-ed."""
        st = os.fstat(folder)
        dev, ino, at = st.st_dev, st.st_ino, os.fsencode(path)
        self._run += 1
        self._answers.clear()
        starts = range(0, len(names), PIECE)
        own: dict[int, Piece] = {}  # the pieces the listing stat-ed itself
        answers: dict[int, tuple | None] = {}  # the worker's, as it sent them
        sent = answered = 0  # the worker's pieces are those below `sent`, answered in order
        back = len(starts)  # and the listing's, those from `back` on
        given = 0  # the pieces handed on, in order
        while given < len(starts):
            self._pump()
            for piece, answer in self._answers:
                answers[piece] = answer
            answered += len(self._answers)
            self._answers.clear()
            while given < len(starts) and (given in own or given in answers):
                piece_names = names[starts[given] : starts[given] + PIECE]
                if given in own:
                    yield own.pop(given)
                else:
                    answer = answers.pop(given)
                    yield _own(folder, piece_names) if answer is None else _received(piece_names, answer)
                given += 1
            while self.alive and sent < back and sent - answered < AHEAD:
                joined = "\0".join(names[starts[sent] : starts[sent] + PIECE]).encode(*_FS_ENCODING)
                message = marshal.dumps((self._run, sent, at, dev, ino, joined))
                self._outgoing += _LENGTH.pack(len(message)) + message
                sent += 1
            if sent < back:  # a piece nobody was sent: the listing's own
                back -= 1
                own[back] = _own(folder, names[starts[back] : starts[back] + PIECE])
            elif answered < sent and (not self.alive or not self._wait()):
                for piece in range(answered, sent):  # its pieces are the listing's after all
                    own[piece] = _own(folder, names[starts[piece] : starts[piece] + PIECE])
                answered = sent

    def _pump(self) -> None:
        """Write what the pipe to the worker takes, read what it has answered; never blocks."""
        if not self.alive:
            return
        try:
            while self._outgoing:
                written = os.write(self._to, self._outgoing)
                del self._outgoing[:written]
        except BlockingIOError:
            pass
        except OSError:  # it is gone
            self._lost()
            return
        ended = False
        while True:
            try:
                part = os.read(self._from, _PIPE_BYTES)
            except BlockingIOError:
                break
            except OSError:
                part = b""
            if not part:
                ended = True
                break
            self._incoming += part
        while len(self._incoming) >= _LENGTH.size:  # what it answered before it ended too
            (size,) = _LENGTH.unpack_from(self._incoming)
            if len(self._incoming) < _LENGTH.size + size:
                break
            run, piece, answer = marshal.loads(self._incoming[_LENGTH.size : _LENGTH.size + size])
            del self._incoming[: _LENGTH.size + size]
            if run == self._run:
                self._answers.append((piece, answer))
                self.answered += 1
        if ended:
            self._lost()

    def _wait(self) -> bool:
        """Wait for the worker to answer (or take more to write); False when it is given up."""
        wanted_out = [self._to] if self._outgoing else []
        ready = select.select([self._from], wanted_out, [], STALLED_AFTER)
        if not any(ready):
            self._lost()
            return False
        return True

    def _lost(self) -> None:
        self.alive = False
        self._outgoing.clear()
        self.process.kill()


def _own(folder: int, names: list[str]) -> Piece:
    missing, stats = stat_piece(folder, names)
    found = _found(names, missing)
    columns = columns_of(stats)
    return found, (stats if columns is None else columns), [(names[n], why) for n, why in missing]


def _received(names: list[str], answer: tuple) -> Piece:
    missing, *raw = answer
    columns = []
    for data in raw:
        column = array("q")
        column.frombytes(data)
        columns.append(column)
    return (
        _found(names, missing),
        (columns[0], columns[1], columns[2], columns[3]),
        [(names[n], why) for n, why in missing],
    )


def _found(names: list[str], missing: list[tuple[int, str]]) -> list[str]:
    if not missing:
        return names
    gone = {n for n, _ in missing}
    return [name for n, name in enumerate(names) if n not in gone]


if __name__ == "__main__":
    _serve(0, 1)
