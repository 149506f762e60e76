"""Xet storage for the test Hub: a content-addressed store (CAS) on local disk that hf_xet writes to.

The real Hub hands a Xet client a CAS URL and a short-lived token; the client chunks, deduplicates
and uploads the file there, then commits an LFS pointer naming only the file's sha256. hf_xet
accepts `local://DIR` as a CAS, so this server gives it `DATA/xet` and needs no Xet service.

To serve such a file to a client that does not speak Xet, the server needs its Xet file hash. The
shard files (`*.mdb`) the client writes into the CAS record, for each file, its Xet hash, the byte
length of each of its segments and (in the metadata extension) its sha256. `XetCas` reads them
into a sha256 -> (Xet hash, size) index and rebuilds a file with hf_xet's download group.

Shard layout (the Xet protocol's MDB shard format): a 48-byte header, then the file-info
section: 48-byte records, each file a FileDataSequenceHeader (hash, flags u32, entry count u32,
unused u64), its entries (xorb hash, flags u32, unpacked bytes u32, chunk range 2 x u32), as many
verification entries when flag bit 31 is set, and one metadata extension (sha256 + 16 unused
bytes) when bit 30 is set. A header whose hash is all 0xFF ends the section. Hashes are four
little-endian u64 words, written as hex word by word.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .gitobjects import SHA256_RE
from .messages import Request, Response
from .store import AddLfsFile, Operation, Repo

_RECORD = 48
_DB_BUSY = "Database already open"  # hf_xet's redb error for a local:// CAS index another session holds
_DB_BUSY_TRIES = 12  # about 15 s in all
_HEADER = 48
_WITH_VERIFICATION = 1 << 31
_WITH_METADATA_EXT = 1 << 30
_BOOKEND = b"\xff" * 32
TOKEN_LIFETIME_S = 3600


def _hash_hex(raw: bytes) -> str:
    """A Xet hash (and a shard's sha256) as its text form: four little-endian u64 words, in hex."""
    return "".join(f"{word:016x}" for word in struct.unpack("<4Q", raw))


@dataclass(frozen=True, slots=True)
class XetFile:
    """A file a shard records: its Xet hash, size and the xorbs holding its chunks."""

    xet_hash: str
    size: int
    xorbs: frozenset[str] = frozenset()


def read_shard(data: bytes) -> dict[str, XetFile]:
    """sha256 -> XetFile for every file of one shard that carries its sha256."""
    found: dict[str, XetFile] = {}
    pos = _HEADER
    while pos + _RECORD <= len(data):
        file_hash = data[pos : pos + 32]
        if file_hash == _BOOKEND:
            break
        flags, entries = struct.unpack_from("<II", data, pos + 32)
        pos += _RECORD
        size = sum(struct.unpack_from("<I", data, pos + i * _RECORD + 36)[0] for i in range(entries))
        xorbs = frozenset(_hash_hex(data[pos + i * _RECORD : pos + i * _RECORD + 32]) for i in range(entries))
        pos += _RECORD * entries
        if flags & _WITH_VERIFICATION:
            pos += _RECORD * entries
        if flags & _WITH_METADATA_EXT:
            found[_hash_hex(data[pos : pos + 32])] = XetFile(_hash_hex(file_hash), size, xorbs)
            pos += _RECORD
    return found


class XetCas:
    """The test Hub's CAS under `root` (DATA/xet): tokens for clients, and files rebuilt by sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index: dict[str, XetFile] = {}
        self._read_shards: set[str] = set()
        self._session = None  # one hf_xet session for every rebuild, made on first use
        # hf_xet writes to a local CAS directly, not over HTTP: what it stored crosses the server's
        # shaped link (--mbytes-per-s) when the commit naming it arrives, so benches pay for it.
        self.on_stored: Callable[[int], None] = lambda nbytes: None
        self._charged = self.stored_bytes()
        # Downloads through Xet, as the Hub serves a Xet-backed file: off unless a test asks
        # (read_headers); `refresh_route` replaces the read-token URL a resolve answer names.
        self.serve_reads = False
        self.refresh_route: str | None = None

    @property
    def url(self) -> str:
        return f"local://{self.root}"

    def token(self, role: str) -> dict[str, object]:
        """What the xet-write-token (and xet-read-token) endpoints answer; hf_xet's local CAS ignores
        the token itself, so it is an opaque value that names only its role."""
        return {
            "casUrl": self.url,
            "accessToken": f"xet-{role}-{hashlib.sha256(str(self.root).encode()).hexdigest()[:16]}",
            "exp": int(time.time()) + TOKEN_LIFETIME_S,
        }

    def stored_bytes(self) -> int:
        """Bytes of xorbs and shards the CAS holds (its caches and indexes left out): what clients sent."""
        total = 0
        for folder in ("xorbs", "shards"):
            for path in (self.root / "xet" / "xorbs" / folder).glob("*"):
                if path.is_file() and not path.name.endswith(".tagset"):
                    total += path.stat().st_size
        return total

    def xorb_files(self) -> dict[str, tuple[int, int, int]]:
        """Each xorb the CAS holds: hash -> (inode, mtime in ns, size). hf_xet's local store writes
        a xorb sent again anew (a new file renamed over the old), so a changed inode or mtime says
        a client sent that xorb again, though the CAS did not grow."""
        found = {}
        for path in (self.root / "xet" / "xorbs" / "xorbs").glob("*"):
            if path.is_file() and not path.name.endswith(".tagset"):
                stat = path.stat()
                # Named "{prefix}.{hash}", the hash in the text form shard records use.
                found[path.name.rpartition(".")[2]] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return found

    def shard_names(self) -> set[str]:
        return {path.name for path in (self.root / "xet" / "xorbs" / "shards").glob("*.mdb")}

    def files_recorded(self) -> dict[str, XetFile]:
        """sha256 -> XetFile for every file the CAS's shards record: the files clients finished
        sending (a file whose upload was cut off has xorbs here but no record)."""
        shards = self.root / "xet" / "xorbs" / "shards"
        found: dict[str, XetFile] = {}
        for name in sorted(self.shard_names()):
            found.update(read_shard((shards / name).read_bytes()))
        return found

    def files_in(self, names: set[str]) -> int:
        """How many files (with their sha256) the named shards record: one per file a client sent."""
        shards = self.root / "xet" / "xorbs" / "shards"
        return sum(len(read_shard((shards / name).read_bytes())) for name in names)

    def charge_stored(self) -> None:
        """Pass what the CAS grew by since the last call to `on_stored`."""
        with self._lock:
            now = self.stored_bytes()
            grown, self._charged = now - self._charged, now
        if grown > 0:
            self.on_stored(grown)

    def find(self, sha256: str) -> XetFile | None:
        """The Xet file with this sha256, reading shards written since the last look."""
        with self._lock:
            if sha256 not in self._index:
                for shard in sorted((self.root / "xet" / "xorbs" / "shards").glob("*.mdb")):
                    if shard.name not in self._read_shards:
                        self._index.update(read_shard(shard.read_bytes()))
                        self._read_shards.add(shard.name)
            return self._index.get(sha256)

    def rebuild(self, sha256: str, directory: Path) -> Path | None:
        """The file with this sha256, rebuilt from the CAS into a new file in `directory` (None
        when the CAS has no such file). The caller checks the content against the sha256."""
        import hf_xet

        found = self.find(sha256)
        if found is None:
            return None
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".xet-", delete=False) as handle:
            target = Path(handle.name)
        token = self.token("read")
        try:
            with self._lock:
                if self._session is None:
                    self._session = hf_xet.XetSession()
            for attempt in range(_DB_BUSY_TRIES):
                try:
                    group = self._session.new_file_download_group(
                        endpoint=self.url, token=token["accessToken"], token_expiry_unix_secs=token["exp"]
                    )
                    break
                except RuntimeError as exc:
                    # A local:// CAS keeps its index in one redb file that an hf_xet session holds
                    # locked while it uploads: a client's upload (a re-run beside a killed run's
                    # last commit, two publishes at once) makes this read wait its turn, as a real
                    # CAS service never would. Not the Hub's behaviour to answer 500 for it.
                    if _DB_BUSY not in str(exc) or attempt == _DB_BUSY_TRIES - 1:
                        raise
                    time.sleep(min(0.1 * 2**attempt, 2.0))
            group.start_download_file(hf_xet.XetFileInfo(found.xet_hash, found.size), str(target))
            group.wait_to_finish()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target


def read_headers(cas: XetCas, base_url: str, token_path: str, sha256: str) -> dict[str, str]:
    """What a resolve answer adds for a file the CAS holds, when `cas.serve_reads`: its Xet hash
    and where to ask for a read token (huggingface_hub then downloads it through hf_xet)."""
    found = cas.find(sha256) if cas.serve_reads else None
    if found is None:
        return {}
    return {
        "X-Xet-Hash": found.xet_hash,
        "X-Xet-Refresh-Route": cas.refresh_route or f"{base_url}{token_path}",
    }


def token_routes(app, cas: XetCas) -> list[tuple[str, str, str, Callable[[Request], Response]]]:
    """The routes a Xet client asks for a CAS token: write access as for any write (a pull request
    needs only sight of the repo), read access as for any read."""
    api_repo = r"/api/(?P<type>model|dataset|space)s/(?P<ns>[^/]+)/(?P<name>[^/]+)"

    def answer(role: str) -> Response:
        token = cas.token(role)
        headers = {
            "X-Xet-Cas-Url": str(token["casUrl"]),
            "X-Xet-Access-Token": str(token["accessToken"]),
            "X-Xet-Token-Expiration": str(token["exp"]),
        }
        return Response.json(token, headers=headers)

    def write_token(request: Request) -> Response:
        p = request.params
        app.writable(request, p["type"], f"{p['ns']}/{p['name']}", pull_request=request.flag("create_pr"))
        return answer("write")

    def read_token(request: Request) -> Response:
        p = request.params
        app.readable(request, p["type"], f"{p['ns']}/{p['name']}")
        return answer("read")

    return [
        ("GET", api_repo + r"/xet-write-token/(?P<rev>[^/]+)", "xet_write_token", write_token),
        ("GET", api_repo + r"/xet-read-token/(?P<rev>[^/]+)", "xet_read_token", read_token),
    ]


# Files of one commit rebuilt at once: the Hub answers a commit without rebuilding anything (its
# CAS serves Xet files as they are); this server rebuilds each into its LFS store before answering,
# so a commit of many large files waits for every rebuild. One at a time they used one core of
# two (a 1 GB first publish's commit: 5 s of the server's CPU in 5 s).
REBUILDS_AT_ONCE = 4


def fetch_committed(cas: XetCas, repo: Repo, operations: list[Operation]) -> None:
    """Bring the content of each LFS pointer a commit names, and the repo does not hold, from the
    CAS into the repo's LFS store (checked against its sha256 and size there), so that resolve, the
    LFS batch answer and every other read find it as they find an LFS upload. A sha256 the CAS does
    not know is left for the commit to refuse. Up to REBUILDS_AT_ONCE files are rebuilt at once;
    a failure is raised once the rebuilds under way have ended, and none is begun after it."""
    cas.charge_stored()
    wanted: dict[str, int | None] = {}
    for op in operations:
        if isinstance(op, AddLfsFile) and SHA256_RE.match(op.oid) and repo.lfs_size(op.oid) is None:
            wanted.setdefault(op.oid, op.size)  # a file named twice is rebuilt once
    failed = threading.Event()

    def bring(oid: str, size: int | None) -> None:
        if failed.is_set():
            return
        try:
            rebuilt = cas.rebuild(oid, repo.lfs_incoming())
            if rebuilt is not None:
                repo.lfs_ingest(rebuilt, oid, size)
        except BaseException:
            failed.set()
            raise

    if not wanted:
        return
    with ThreadPoolExecutor(max_workers=min(REBUILDS_AT_ONCE, len(wanted))) as pool:
        futures = [pool.submit(bring, oid, size) for oid, size in wanted.items()]
    for future in futures:
        future.result()
