"""`HubServer`: the Hub-protocol server's lifecycle and the knobs a test turns (stats, faults, transfers)."""

from __future__ import annotations

import os
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from .app import HubApp, TransferSettings
from .errors import HubError
from .faults import FaultKind, FaultPlan
from .handler import Connections, make_handler
from .limits import HubLimits
from .link import Link
from .stats import Accounting, Stats
from .store import Store
from .xet import XetCas


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class HubServer:
    """A server speaking the Hugging Face Hub's HTTP API, storing repos under `data_dir`.

    tokens maps a bearer token to (user name, "write" | "read"); orgs maps a user to the orgs it
    belongs to. As on the Hub, a write token creates and writes repos only in its user's namespace
    and its orgs (403 elsewhere); the owner's tokens (read or write) see its private repos.
    read_only maps a token to repos ("dataset/ns/name") it may only read (tests/hubserver/scopes.py).
    limits: the storage and per-commit limits enforced on commits (tests/hubserver/limits.py).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        tokens: dict[str, tuple[str, str]] | None = None,
        host: str = "127.0.0.1",
        multipart_threshold: int = 50 * 1024 * 1024,
        multipart_chunk_size: int = 8 * 1024 * 1024,
        orgs: dict[str, set[str]] | None = None,
        link: Link | None = None,
        read_only: dict[str, set[str]] | None = None,
        xet: bool = True,
        limits: HubLimits | None = None,
    ) -> None:
        for _user, role in (tokens or {}).values():
            if role not in ("read", "write"):
                raise ValueError(f"Token role must be 'read' or 'write', got {role!r} for a token")
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.store = Store(self.data_dir)
        self.transfer = TransferSettings(
            multipart_threshold=multipart_threshold, multipart_chunk_size=multipart_chunk_size
        )
        self._accounting = Accounting()
        self._faults = FaultPlan()
        # Xet storage, on as on the Hub: the CAS lives in DATA/xet (xet=False: the LFS path only).
        self.xet = XetCas(self.data_dir / "xet") if xet else None
        self._xet_baseline = self.xet.stored_bytes() if self.xet else 0
        self._xet_shards = self.xet.shard_names() if self.xet else set()
        self.app = HubApp(
            self.store, dict(tokens or {}), self._accounting, self.transfer, orgs, read_only, self.xet
        )
        if limits is not None:  # the Hub's own figures unless a test asks for smaller ones
            self.app.limits = limits
        self._connections = Connections()
        # Latency and a shared rate for bodies (--latency-ms, --mbytes-per-s); none by default.
        self.link = link or Link()
        if self.xet is not None:
            self.xet.on_stored = self.link.transfer
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> HubServer:
        """Bind and serve in a background thread; returns once the socket accepts connections."""
        if self._httpd is not None:
            raise RuntimeError(f"HubServer already running at {self.url}")
        self._stopping.clear()
        handler = make_handler(self.app, self._faults, self._connections, self._stopping, self.link)
        self._httpd = _HTTPServer((self.host, self.port), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"hubserver:{self.port}"
        )
        self._thread.daemon = True
        self._thread.start()
        if self.xet is not None:
            allow_local_xet_storage(self.xet.root)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._connections.close_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- accounting and faults ----------------------------------------------------------------
    @property
    def stats(self) -> Stats:
        """The accounting since the last reset. Xet uploads go straight into the CAS, not through
        an endpoint: what the CAS grew by counts as uploaded (xet_bytes, and in upload_bytes)."""
        if self.xet is None:
            return self._accounting.snapshot()
        grown = self.xet.stored_bytes() - self._xet_baseline
        files = self.xet.files_in(self.xet.shard_names() - self._xet_shards)
        return self._accounting.snapshot(xet_bytes=grown, xet_files=files)

    def reset_stats(self) -> None:
        self._accounting.reset()
        self._xet_baseline = self.xet.stored_bytes() if self.xet else 0
        self._xet_shards = self.xet.shard_names() if self.xet else set()

    def arm_fault(
        self,
        pattern: str,
        kind: FaultKind,
        count: int = 1,
        retry_after: float = 1,
        stall_seconds: float = 5,
    ) -> None:
        """Make the next `count` requests matching `pattern` fail with `kind` (see faults.py)."""
        self._faults.arm(pattern, kind, count=count, retry_after=retry_after, stall_seconds=stall_seconds)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def armed_faults(self) -> int:
        """How many fault firings are still armed."""
        return self._faults.armed

    @property
    def limits(self):
        """The Hub's storage limits this server enforces on commits (tests/hubserver/limits.py)."""
        return self.app.limits

    # ---- transfer knobs (settable while running) ----------------------------------------------
    @property
    def multipart_threshold(self) -> int:
        return self.transfer.multipart_threshold

    @multipart_threshold.setter
    def multipart_threshold(self, value: int) -> None:
        self.transfer.multipart_threshold = value

    @property
    def multipart_chunk_size(self) -> int:
        return self.transfer.multipart_chunk_size

    @multipart_chunk_size.setter
    def multipart_chunk_size(self, value: int) -> None:
        self.transfer.multipart_chunk_size = value

    # ---- direct reads for assertions ----------------------------------------------------------
    def head(self, repo_type: str, repo_id: str, revision: str = "main") -> str | None:
        """The commit `revision` points at, or None when the repo or revision does not exist."""
        repo = self.store.find(repo_type, repo_id)
        if repo is None:
            return None
        try:
            return repo.resolve(revision)[0]
        except HubError:
            return None

    def commit_history(self, repo_type: str, repo_id: str, rev: str = "main") -> list[dict[str, object]]:
        """Commits reachable from `rev` by first parents, newest first: id, title, message, author,
        date, parents and the files of each commit ({path: git blob id})."""
        repo = self.store.get(repo_type, repo_id)
        sha, _ = repo.resolve(rev)
        return [
            {
                "id": oid,
                "title": commit.title,
                "message": commit.message,
                "author": commit.author,
                "date": commit.date,
                "parents": list(commit.parents),
                "files": dict(repo.snapshot(oid).files),
            }
            for oid, commit in repo.history(sha)
        ]

    def read_file(self, repo_type: str, repo_id: str, path: str, revision: str = "main") -> bytes:
        """The content of a file at a revision, LFS content included."""
        repo = self.store.get(repo_type, repo_id)
        sha, _ = repo.resolve(revision)
        oid = repo.snapshot(sha).files[path]
        info = repo.file_info(path, oid)
        if info.lfs is not None:
            return repo.read_lfs(info.lfs.oid).read_bytes()
        return repo.blob(oid)

    def is_lfs(self, repo_type: str, repo_id: str, path: str, revision: str = "main") -> bool:
        repo = self.store.get(repo_type, repo_id)
        sha, _ = repo.resolve(revision)
        return repo.file_info(path, repo.snapshot(sha).files[path]).lfs is not None


def allow_local_xet_storage(root: Path) -> None:
    """hubpress lets hf_xet use a local:// Xet storage only inside the folders HUBPRESS_XET_LOCAL_CAS
    lists (hubpress.targets.hub_http): add this server's CAS, as an operator of a test Hub would
    export it, so this process and the commands it starts accept it."""
    listed = [p for p in os.environ.get("HUBPRESS_XET_LOCAL_CAS", "").split(os.pathsep) if p]
    if str(root) not in listed:
        os.environ["HUBPRESS_XET_LOCAL_CAS"] = os.pathsep.join([*listed, str(root)])
