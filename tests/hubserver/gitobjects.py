"""Git objects as the Hub stores them: blobs, trees, commits and LFS pointers, as pure functions.

Object ids are real git ids (sha1 over "<type> <len>\\0<body>"), so a repo written by the server is a
bare git repository that `git --git-dir=... log` can read, and the `oid` the server reports for a
file is exactly what git (and the Hub) would report.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

LFS_POINTER_VERSION = "https://git-lfs.github.com/spec/v1"
MODE_FILE = "100644"
MODE_TREE = "40000"

_POINTER_RE = re.compile(
    rb"\Aversion https://git-lfs\.github\.com/spec/v1\noid sha256:(?P<oid>[0-9a-f]{64})\nsize (?P<size>\d+)\n\Z"
)
SHA1_RE = re.compile(r"\A[0-9a-f]{40}\Z")
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


def object_id(kind: str, body: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(body)) + body).hexdigest()


def blob_id(data: bytes) -> str:
    """The git blob id of some bytes: the Hub's `oid` of a regular file."""
    return object_id("blob", data)


@dataclass(frozen=True, slots=True)
class LfsPointer:
    oid: str  # sha256 of the content
    size: int

    def encode(self) -> bytes:
        return f"version {LFS_POINTER_VERSION}\noid sha256:{self.oid}\nsize {self.size}\n".encode()


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    """The LFS pointer a blob holds, or None when the blob is ordinary content."""
    if len(data) > 200:
        return None
    match = _POINTER_RE.match(data)
    if match is None:
        return None
    return LfsPointer(oid=match["oid"].decode(), size=int(match["size"]))


@dataclass(frozen=True, slots=True)
class TreeEntry:
    mode: str
    name: str
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == MODE_TREE


def encode_tree(entries: list[TreeEntry]) -> bytes:
    # git sorts tree entries by name, with directories compared as if they ended in "/"
    ordered = sorted(entries, key=lambda e: e.name + "/" if e.is_tree else e.name)
    return b"".join(b"%s %s\0" % (e.mode.encode(), e.name.encode()) + bytes.fromhex(e.oid) for e in ordered)


def decode_tree(body: bytes) -> list[TreeEntry]:
    entries = []
    pos = 0
    while pos < len(body):
        space = body.index(b" ", pos)
        nul = body.index(b"\0", space)
        mode = body[pos:space].decode()
        name = body[space + 1 : nul].decode()
        oid = body[nul + 1 : nul + 21].hex()
        entries.append(TreeEntry(mode=mode, name=name, oid=oid))
        pos = nul + 21
    return entries


@dataclass(frozen=True, slots=True)
class Commit:
    tree: str
    parents: tuple[str, ...]
    author: str  # Hub user name
    timestamp: int  # seconds since the epoch, UTC
    title: str
    message: str

    def encode(self) -> bytes:
        who = f"{self.author} <{self.author}@users.noreply.huggingface.co> {self.timestamp} +0000"
        lines = [
            f"tree {self.tree}",
            *(f"parent {p}" for p in self.parents),
            f"author {who}",
            f"committer {who}",
        ]
        text = "\n".join(lines) + "\n\n" + self.title
        if self.message:
            text += "\n\n" + self.message
        return (text + "\n").encode()

    @property
    def date(self) -> str:
        """The ISO date the Hub API reports (the client parses '%Y-%m-%dT%H:%M:%S.%fZ')."""
        return datetime.fromtimestamp(self.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def decode_commit(body: bytes) -> Commit:
    head, _, text = body.decode().partition("\n\n")
    tree = ""
    parents: list[str] = []
    author = ""
    timestamp = 0
    for line in head.split("\n"):
        key, _, value = line.partition(" ")
        if key == "tree":
            tree = value
        elif key == "parent":
            parents.append(value)
        elif key == "author":
            author = value.split(" <", 1)[0]
            timestamp = int(value.rsplit(" ", 2)[1])
    text = text[:-1] if text.endswith("\n") else text
    title, _, message = text.partition("\n\n")
    return Commit(
        tree=tree, parents=tuple(parents), author=author, timestamp=timestamp, title=title, message=message
    )


def build_trees(files: dict[str, str]) -> tuple[str, dict[str, bytes]]:
    """Nest a flat {path: blob id} map into git trees. Returns the root tree id and every tree
    object body by id (the caller stores them)."""
    children: dict[str, dict[str, TreeEntry]] = {"": {}}
    for path in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            children.setdefault("/".join(parts[:depth]), {})
    for path, oid in files.items():
        parent, _, name = path.rpartition("/")
        children[parent][name] = TreeEntry(MODE_FILE, name, oid)
    objects: dict[str, bytes] = {}
    # deepest directories first, so a child's id is known when its parent is encoded
    for directory in sorted(children, key=lambda d: d.count("/") + (1 if d else 0), reverse=True):
        body = encode_tree(list(children[directory].values()))
        oid = object_id("tree", body)
        objects[oid] = body
        if directory:
            parent, _, name = directory.rpartition("/")
            children[parent][name] = TreeEntry(MODE_TREE, name, oid)
        else:
            root = oid
    return root, objects
