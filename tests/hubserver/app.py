"""The Hub's HTTP API as huggingface_hub 2.x and datasets 5.x call it: routes, access rules, endpoints.

Endpoints take a `Request` and return a `Response`; they raise `HubError`s that the transport
turns into the status and X-Error-Code the Hub would send. Shapes follow the installed
huggingface_hub (hf_api.py, _commit_api.py, lfs.py, file_download.py, hf_file_system.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from . import multipart as multipart_uploads
from . import scopes
from .errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    Forbidden,
    HubError,
    NotFound,
    RangeNotSatisfiable,
    RepoNotFound,
    Unauthorized,
    Unprocessable,
)
from .gitobjects import SHA256_RE
from .limits import HubLimits, check_commit
from .messages import FileSlice, Request, Response
from .stats import Accounting
from .store import (
    AddFile,
    AddLfsFile,
    CopyFile,
    DeleteFile,
    DeleteFolder,
    FileInfo,
    Operation,
    Repo,
    Store,
    decide_upload_mode,
    matches_pattern,
)
from .xet import XetCas, fetch_committed, read_headers, token_routes

TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_API_REPO = r"/api/(?P<type>model|dataset|space)s/(?P<ns>[^/]+)/(?P<name>[^/]+)"
_WEB_REPO = r"(?:/(?P<prefix>datasets|spaces))?/(?P<ns>[^/]+)/(?P<name>[^/]+?)"


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    role: str  # "write" | "read"
    read_only: frozenset[str] = frozenset()  # "type/ns/name" repos this token may only read (scopes.py)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    handler: Callable[[Request], Response]


@dataclass(slots=True)
class TransferSettings:
    """LFS transfer knobs, settable on a running server (tests lower the multipart threshold)."""

    multipart_threshold: int = 50 * 1024 * 1024
    multipart_chunk_size: int = 8 * 1024 * 1024
    tree_page_size: int = 1000
    tree_expand_page_size: int = 50
    commits_page_size: int = 50


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _repo_id(params: dict[str, str]) -> str:
    return f"{params['ns']}/{params['name']}"


def _web_type(params: dict[str, str]) -> str:
    return {None: "model", "": "model", "datasets": "dataset", "spaces": "space"}[params.get("prefix")]


def _entry(info: FileInfo) -> dict:
    entry: dict = {"type": "file", "oid": info.oid, "size": info.size, "path": info.path}
    if info.lfs is not None:
        entry["lfs"] = {"oid": info.lfs.oid, "size": info.lfs.size, "pointerSize": info.pointer_size}
    return entry


def _parse_range(value: str, total: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single 'bytes=' range; None when the header is to be ignored."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:
        length = int(match[2])
        if length == 0:
            raise RangeNotSatisfiable(f"Range {value} is empty", {"Content-Range": f"bytes */{total}"})
        return max(total - length, 0), total - 1
    start = int(match[1])
    end = min(int(match[2]), total - 1) if match[2] else total - 1
    if start >= total or start > end:
        raise RangeNotSatisfiable(
            f"Range {value} is outside the file's {total} bytes", {"Content-Range": f"bytes */{total}"}
        )
    return start, end


class HubApp:
    def __init__(
        self,
        store: Store,
        tokens: dict[str, tuple[str, str]],
        accounting: Accounting,
        transfer: TransferSettings,
        orgs: dict[str, set[str]] | None = None,
        read_only: dict[str, set[str]] | None = None,
        xet: XetCas | None = None,
    ) -> None:
        self.store = store
        self.xet = xet  # None: the LFS path only, as older and self-hosted Hubs serve
        self.tokens = {
            token: Identity(user, role, frozenset((read_only or {}).get(token, ())))
            for token, (user, role) in tokens.items()
        }
        self.orgs = {user: set(names) for user, names in (orgs or {}).items()}  # user -> orgs
        self.accounting = accounting
        self.transfer = transfer
        self.limits = HubLimits()  # settable on a running server (tests/hubserver/limits.py)
        self._secret = secrets.token_bytes(32)
        self._running_lock = threading.Lock()
        self._running_sha256: dict[str, tuple[int, Any]] = {}  # parts dir -> (next part, sha256 so far)
        self.routes = self._routes()

    # ---- routing ------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        table: list[tuple[str, str, str, Callable[[Request], Response]]] = [
            ("GET", r"/api/whoami-v2", "whoami", self.whoami),
            ("POST", r"/api/validate-yaml", "validate_yaml", self.validate_yaml),
            ("POST", r"/api/repos/create", "repo_create", self.repo_create),
            ("DELETE", r"/api/repos/delete", "repo_delete", self.repo_delete),
            ("POST", r"/api/repos/delete", "repo_delete", self.repo_delete),
            ("PUT", _API_REPO + r"/settings", "repo_settings", self.repo_settings),
            ("GET", _API_REPO + r"(?:/revision/(?P<rev>[^/]+))?", "repo_info", self.repo_info),
            ("POST", _API_REPO + r"/preupload/(?P<rev>[^/]+)", "preupload", self.preupload),
            ("POST", _API_REPO + r"/commit/(?P<rev>[^/]+)", "commit", self.commit),
            ("POST", _API_REPO + r"/paths-info/(?P<rev>[^/]+)", "paths_info", self.paths_info),
            ("GET", _API_REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree", self.tree),
            ("GET", _API_REPO + r"/refs", "refs", self.refs),
            ("GET", _API_REPO + r"/commits/(?P<rev>[^/]+)", "commits", self.commits),
            ("POST", _API_REPO + r"/branch/(?P<branch>[^/]+)", "branch_create", self.branch_create),
            ("DELETE", _API_REPO + r"/branch/(?P<branch>[^/]+)", "branch_delete", self.branch_delete),
            ("POST", _API_REPO + r"/tag/(?P<rev>[^/]+)", "tag_create", self.tag_create),
            ("DELETE", _API_REPO + r"/tag/(?P<tag>[^/]+)", "tag_delete", self.tag_delete),
            ("POST", _WEB_REPO + r"\.git/info/lfs/objects/batch", "lfs_batch", self.lfs_batch),
            ("PUT", r"/_lfs/(?P<type>model|dataset|space)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})",
             "lfs_upload", self.lfs_upload),
            ("PUT", r"/_lfs/(?P<type>model|dataset|space)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})"
             r"/part/(?P<part>\d+)", "lfs_upload", self.lfs_upload_part),
            ("POST", r"/_lfs/(?P<type>model|dataset|space)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})",
             "lfs_complete", self.lfs_complete),
            ("POST", r"/_lfs/(?P<type>model|dataset|space)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<oid>[0-9a-f]{64})"
             r"/verify", "lfs_verify", self.lfs_verify),
            ("GET", _WEB_REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve", self.resolve),
            ("HEAD", _WEB_REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve", self.resolve),
        ]  # fmt: skip
        if self.xet is not None:
            table += token_routes(self, self.xet)
        return [Route(m, re.compile(p), name, fn) for m, p, name, fn in table]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method:
                found = route.pattern.fullmatch(path)
                if found:
                    params = {k: unquote(v) for k, v in found.groupdict().items() if v is not None}
                    return route, params
        return None

    def not_found(self, request: Request) -> Response:
        raise NotFound(f"Not Found: {request.method} {request.path}")

    # ---- access -------------------------------------------------------------------------------
    def identity(self, request: Request) -> Identity | None:
        auth = request.header("authorization") or ""
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        identity = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if identity is None:
            raise Unauthorized("Invalid credentials in Authorization header")
        return identity

    def _writer(self, request: Request) -> Identity:
        identity = self.identity(request)
        if identity is None:
            raise Unauthorized("You must be authenticated to write: send a write token")
        if identity.role != "write":
            raise Forbidden("This token has the read role: writing needs a write token")
        return identity

    def readable(self, request: Request, repo_type: str, repo_id: str) -> Repo:
        identity = self.identity(request)  # a bad token is refused even where none is needed
        repo = self.store.get(repo_type, repo_id)
        if repo.meta.private and (identity is None or identity.user != repo.meta.owner):
            raise RepoNotFound(f"Repository Not Found for {repo_type} {repo_id}")
        return repo

    def writable(self, request: Request, repo_type: str, repo_id: str, *, pull_request: bool = False) -> Repo:
        """The repo, if the caller may write to it: its owner, or anyone who can see it for a PR."""
        identity = self.identity(request)
        if identity is None:
            raise Unauthorized("You must be authenticated to write: send a write token")
        repo = self.readable(request, repo_type, repo_id)
        if identity.role != "write":
            raise Forbidden("This token has the read role: writing needs a write token")
        if not self.may_write_in(identity, repo_id.split("/", 1)[0]) and not pull_request:
            raise Forbidden(f"{identity.user} may not write to {repo_id}: open a pull request instead")
        scopes.check_not_read_only(identity.read_only, repo_type, repo_id, pull_request)
        return repo

    def may_write_in(self, identity: Identity, namespace: str) -> bool:
        """As on the Hub: a token writes to its user's namespace and to the orgs the user belongs to."""
        return namespace == identity.user or namespace in self.orgs.get(identity.user, set())

    def owned(self, request: Request, repo_type: str, repo_id: str) -> Repo:
        return self.writable(request, repo_type, repo_id)

    # ---- account ------------------------------------------------------------------------------
    def whoami(self, request: Request) -> Response:
        identity = self.identity(request)
        if identity is None:
            raise Unauthorized("Authorization header is required for whoami")
        return Response.json(
            {
                "type": "user",
                "id": hashlib.sha1(identity.user.encode()).hexdigest()[:24],
                "name": identity.user,
                "fullname": identity.user,
                "email": f"{identity.user}@example.invalid",
                "emailVerified": True,
                "isPro": False,
                "canPay": False,
                "orgs": [{"type": "org", "name": org} for org in sorted(self.orgs.get(identity.user, ()))],
                "auth": {
                    "type": "access_token",
                    "accessToken": scopes.fine_grained(
                        identity.user, identity.role, self.orgs.get(identity.user, set()), identity.read_only
                    )
                    if identity.read_only
                    else {"displayName": f"{identity.user}-{identity.role}", "role": identity.role},
                },
            }
        )

    def validate_yaml(self, request: Request) -> Response:
        request.body()
        return Response.json({"errors": [], "warnings": []})

    # ---- repos --------------------------------------------------------------------------------
    def _repo_url(self, request: Request, repo_type: str, repo_id: str) -> str:
        return f"{request.base_url}/{TYPE_PREFIX[repo_type]}{repo_id}"

    @staticmethod
    def _private_flag(payload: dict) -> bool | None:
        if "visibility" in payload and payload["visibility"] is not None:
            return payload["visibility"] != "public"
        if "private" in payload and payload["private"] is not None:
            return bool(payload["private"])
        return None

    def repo_create(self, request: Request) -> Response:
        identity = self._writer(request)
        payload = request.json()
        if not isinstance(payload, dict) or not payload.get("name"):
            raise BadRequest("Body must be a JSON object with a name")
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or identity.user
        repo_id = f"{namespace}/{payload['name']}"
        if not self.may_write_in(identity, namespace):
            raise Forbidden(
                f"You don't have the rights to create a {repo_type} under the namespace {namespace!r}"
            )
        private = self._private_flag(payload) or False
        url = self._repo_url(request, repo_type, repo_id)
        try:
            self.store.create(repo_type, repo_id, owner=identity.user, private=private)
        except Conflict as conflict:
            # the client reads "url" from the 409 too when create_repo(exist_ok=True)
            response = error_response(conflict)
            response.body = json.dumps({"error": conflict.message, "url": url}).encode()
            return response
        return Response.json({"url": url, "name": repo_id, "id": repo_id})

    def repo_delete(self, request: Request) -> Response:
        identity = self._writer(request)
        payload = request.json()
        if not isinstance(payload, dict) or not payload.get("name"):
            raise BadRequest("Body must be a JSON object with a name")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or identity.user}/{payload['name']}"
        self.owned(request, repo_type, repo_id)
        self.store.delete(repo_type, repo_id)
        return Response.json({})

    def repo_settings(self, request: Request) -> Response:
        p = request.params
        repo = self.owned(request, p["type"], _repo_id(p))
        payload = request.json()
        private = self._private_flag(payload if isinstance(payload, dict) else {})
        if private is not None:
            repo.set_private(private, self.store)
        return Response.json({"private": repo.meta.private})

    def repo_info(self, request: Request) -> Response:
        p = request.params
        repo = self.readable(request, p["type"], _repo_id(p))
        sha, _ = repo.resolve(p.get("rev", "main"))
        commit = repo.commit(sha)
        snap = repo.snapshot(sha)
        with_blobs = request.flag("blobs")
        siblings = []
        for path in sorted(snap.files):
            if with_blobs:
                info = repo.file_info(path, snap.files[path])
                sibling: dict = {"rfilename": path, "size": info.size, "blobId": info.oid}
                if info.lfs is not None:
                    sibling["lfs"] = {
                        "size": info.size,
                        "sha256": info.lfs.oid,
                        "pointerSize": info.pointer_size,
                    }
                siblings.append(sibling)
            else:
                siblings.append({"rfilename": path})
        meta = repo.meta
        info = {
            "_id": hashlib.sha1(f"{meta.repo_type}/{meta.repo_id}".encode()).hexdigest()[:24],
            "id": meta.repo_id,
            "author": meta.namespace,
            "sha": sha,
            "lastModified": commit.date,
            "createdAt": _iso(meta.created_at),
            "private": meta.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if meta.repo_type == "model":
            info["modelId"] = meta.repo_id
        return Response.json(info)

    # ---- uploads ------------------------------------------------------------------------------
    def preupload(self, request: Request) -> Response:
        p = request.params
        repo = self.writable(request, p["type"], _repo_id(p), pull_request=request.flag("create_pr"))
        payload = request.json()
        files = payload.get("files") if isinstance(payload, dict) else None
        if not isinstance(files, list):
            raise BadRequest("Body must be a JSON object with a list of files")
        sha, _ = repo.resolve(p["rev"])
        snap = repo.snapshot(sha)
        patterns = repo.lfs_patterns_at(sha)
        ignore = [line.strip() for line in (payload.get("gitIgnore") or "").splitlines()]
        ignore = [line for line in ignore if line and not line.startswith("#")]
        out = []
        for item in files:
            path = item.get("path")
            if not isinstance(path, str):
                raise BadRequest("Each file needs a path")
            try:
                sample = base64.b64decode(item.get("sample") or "")
            except (binascii.Error, ValueError):
                raise BadRequest(f"The sample of {path} is not base64")
            entry: dict = {
                "path": path,
                "uploadMode": decide_upload_mode(path, int(item.get("size") or 0), sample, patterns),
                "shouldIgnore": any(matches_pattern(path, pattern) for pattern in ignore),
            }
            if path in snap.files:
                info = repo.file_info(path, snap.files[path])
                entry["oid"] = info.lfs.oid if info.lfs is not None else info.oid
            out.append(entry)
        return Response.json({"files": out, "commitOid": sha})

    @staticmethod
    def _parse_commit_payload(raw: bytes) -> tuple[dict, list[Operation]]:
        header: dict | None = None
        operations: list[Operation] = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, value = item["key"], item["value"]
            except (ValueError, KeyError, TypeError):
                raise BadRequest(f"Line {number} of the commit payload is not a {{key, value}} JSON object")
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise BadRequest(
                        f"Unsupported encoding {value.get('encoding')!r} for {value.get('path')}"
                    )
                try:
                    content = base64.b64decode(value["content"], validate=True)
                except (binascii.Error, ValueError, KeyError):
                    raise BadRequest(f"The content of {value.get('path')} is not valid base64")
                operations.append(AddFile(value["path"], content))
            elif key == "lfsFile":
                if value.get("algo", "sha256") != "sha256":
                    raise BadRequest(f"Unsupported LFS algo {value.get('algo')!r}")
                operations.append(AddLfsFile(value["path"], value["oid"], value.get("size")))
            elif key == "deletedFile":
                operations.append(DeleteFile(value["path"]))
            elif key == "deletedFolder":
                operations.append(DeleteFolder(value["path"]))
            elif key == "copyFile":
                operations.append(CopyFile(value["path"], value["srcPath"], value.get("srcRevision")))
            else:
                raise BadRequest(f"Unknown commit operation {key!r} on line {number}")
        if header is None or not header.get("summary"):
            raise BadRequest("The commit payload needs a header line with a summary")
        return header, operations

    def commit(self, request: Request) -> Response:
        p = request.params
        create_pr = request.flag("create_pr")
        repo_type, repo_id = p["type"], _repo_id(p)
        repo = self.writable(request, repo_type, repo_id, pull_request=create_pr)
        identity = self.identity(request)
        assert identity is not None
        header, operations = self._parse_commit_payload(request.body())
        check_commit(self.limits, self._files_at(repo, p["rev"]), operations)
        if self.xet is not None:
            fetch_committed(self.xet, repo, operations)
        result, inline_bytes = repo.create_commit(
            p["rev"],
            operations,
            author=identity.user,
            title=header["summary"],
            message=header.get("description") or "",
            parent_commit=header.get("parentCommit"),
            create_pr=create_pr,
        )
        self.accounting.uploaded(inline_bytes)
        self.accounting.committed()
        url = self._repo_url(request, repo_type, repo_id)
        body = {"success": True, "commitOid": result.oid, "commitUrl": f"{url}/commit/{result.oid}"}
        if result.pr_num is not None:
            body["pullRequestUrl"] = f"{url}/discussions/{result.pr_num}"
        return Response.json(body)

    @staticmethod
    def _files_at(repo: Repo, rev: str) -> list[str]:
        """The files of `rev` (none when it does not resolve: the commit itself then says why)."""
        try:
            sha, _ = repo.resolve(rev)
        except HubError:
            return []
        return list(repo.snapshot(sha).files)

    # ---- LFS ----------------------------------------------------------------------------------
    def _sign(self, method: str, path: str, size: int) -> str:
        return hmac.new(self._secret, f"{method} {path} {size}".encode(), "sha256").hexdigest()[:32]

    def _signed_url(self, request: Request, method: str, path: str, size: int) -> str:
        query = urlencode({"size": size, "sig": self._sign(method, path, size)})
        return f"{request.base_url}{path}?{query}"

    def _check_signature(self, request: Request) -> int:
        """The object size a signed upload link was issued for (upload links carry no token, like S3's)."""
        size = request.arg("size") or ""
        sig = request.arg("sig") or ""
        if not size.isdigit() or not hmac.compare_digest(
            sig, self._sign(request.method, request.path, int(size))
        ):
            raise Forbidden("Upload link signature does not match")
        return int(size)

    def lfs_batch(self, request: Request) -> Response:
        p = request.params
        repo_type, repo_id = _web_type(p), _repo_id(p)
        repo = self.writable(request, repo_type, repo_id, pull_request=True)
        payload = request.json()
        if not isinstance(payload, dict) or payload.get("operation") != "upload":
            raise BadRequest("Only the LFS upload operation is supported")
        transfers = payload.get("transfers") or ["basic"]
        multipart = "multipart" in transfers
        objects = []
        base = f"/_lfs/{repo_type}/{repo_id}"
        for obj in payload.get("objects") or []:
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {"oid": str(oid), "size": size if isinstance(size, int) else 0,
                     "error": {"code": 422, "message": "oid must be a sha256 and size a non-negative integer"}}
                )  # fmt: skip
                continue
            if repo.lfs_size(oid) == size:
                objects.append({"oid": oid, "size": size, "authenticated": True})
                continue
            verify = {"href": f"{request.base_url}{base}/{oid}/verify"}
            if multipart and size > self.transfer.multipart_threshold:
                chunk = self.transfer.multipart_chunk_size
                header = {"chunk_size": str(chunk)}
                upload_id = multipart_uploads.new_upload_id()  # this uploader's parts are kept apart
                for number in range(1, math.ceil(size / chunk) + 1):
                    header[str(number)] = multipart_uploads.with_upload_id(
                        self._signed_url(request, "PUT", f"{base}/{oid}/part/{number}", size), upload_id
                    )
                href = multipart_uploads.with_upload_id(
                    self._signed_url(request, "POST", f"{base}/{oid}", size), upload_id
                )
                upload = {"href": href, "header": header}
            else:
                upload = {"href": self._signed_url(request, "PUT", f"{base}/{oid}", size)}
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {"upload": upload, "verify": verify},
                }
            )
        return Response.json(
            {"transfer": "multipart" if multipart else "basic", "objects": objects, "hash_algo": "sha256"},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _receive(self, request: Request, directory: Path, digest=None) -> tuple[Path, str]:
        """Stream the request body into a temporary file; returns it and an ETag for it.

        The ETag is opaque, as S3's is to clients: huggingface_hub only hands a part's ETag back
        when completing the upload. It is a fresh token rather than the body's MD5 because hashing
        every byte twice (MD5 here, sha256 at ingest) cost this server more CPU than the client
        it serves; the content itself is checked against its sha256 when it is ingested."""
        fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in request.body_chunks():
                    handle.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    self.accounting.uploaded(len(chunk))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), uuid.uuid4().hex

    def _lfs_repo(self, request: Request) -> Repo:
        p = request.params
        return self.store.get(p["type"], _repo_id(p))

    def lfs_upload(self, request: Request) -> Response:
        size = self._check_signature(request)
        repo = self._lfs_repo(request)
        digest = hashlib.sha256()
        tmp, etag = self._receive(request, repo.lfs_incoming(), digest)
        repo.lfs_ingest(tmp, request.params["oid"], size, sha256=digest.hexdigest())
        return Response(status=200, headers={"ETag": f'"{etag}"'})

    def lfs_upload_part(self, request: Request) -> Response:
        self._check_signature(request)
        repo = self._lfs_repo(request)
        parts = repo.lfs_parts_dir(multipart_uploads.parts_key(request))
        parts.mkdir(parents=True, exist_ok=True)
        number = int(request.params["part"])
        if number < 1:
            raise BadRequest(f"Part numbers start at 1, not {number}")
        # Each part is written in place, at its offset in the object, so completing the upload
        # only has to hash the object, not copy every part into it. A part sent again (a retry)
        # overwrites its own range; the sha256 checked at completion catches anything amiss.
        offset = (number - 1) * self.transfer.multipart_chunk_size
        key = str(parts)
        with self._running_lock:
            expected, digest = self._running_sha256.get(key, (1, hashlib.sha256()))
        # Clients send a file's parts in order: hashing each part as it lands (on a copy, kept only
        # when the part arrives whole) spares completion a read of the whole object.
        digest = digest.copy() if number == expected else None
        fd = os.open(parts / "object", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for chunk in request.body_chunks():
                os.pwrite(fd, chunk, offset)
                if digest is not None:
                    digest.update(chunk)
                offset += len(chunk)
                self.accounting.uploaded(len(chunk))
        finally:
            os.close(fd)
        with self._running_lock:
            if digest is not None:
                self._running_sha256[key] = (number + 1, digest)
            elif number < expected:  # an earlier part sent again: the running hash no longer holds
                self._running_sha256[key] = (0, hashlib.sha256())
        etag = uuid.uuid4().hex
        (parts / f"{number}.etag").write_text(etag)
        return Response(status=200, headers={"ETag": f'"{etag}"'})

    def lfs_complete(self, request: Request) -> Response:
        size = self._check_signature(request)
        repo = self._lfs_repo(request)
        oid = request.params["oid"]
        payload = request.json()
        parts_dir = repo.lfs_parts_dir(multipart_uploads.parts_key(request))
        parts = sorted(
            (payload.get("parts") or []) if isinstance(payload, dict) else [], key=lambda x: x["partNumber"]
        )
        if not parts:
            raise BadRequest("Completion needs the list of parts")
        for part in parts:
            number = int(part["partNumber"])
            etag_file = parts_dir / f"{number}.etag"
            if not etag_file.exists():
                raise BadRequest(f"Part {number} of {oid} was not uploaded")
            if str(part.get("etag", "")).strip('"') != etag_file.read_text():
                raise BadRequest(f"Part {number} of {oid}: etag does not match the uploaded part")
        assembled = parts_dir / "object"
        if not assembled.exists():
            raise BadRequest(f"No part of {oid} was uploaded")
        with self._running_lock:
            upto, digest = self._running_sha256.pop(str(parts_dir), (0, None))
        whole = (
            digest is not None
            and upto == len(parts) + 1
            and [int(p["partNumber"]) for p in parts] == list(range(1, len(parts) + 1))
        )
        fd, name = tempfile.mkstemp(dir=repo.lfs_incoming(), prefix=".assembled-")
        os.close(fd)
        os.replace(assembled, name)
        repo.lfs_ingest(Path(name), oid, size, sha256=digest.hexdigest() if whole else None)
        for leftover in parts_dir.iterdir():
            leftover.unlink()
        parts_dir.rmdir()
        return Response.json({})

    def lfs_verify(self, request: Request) -> Response:
        p = request.params
        repo = self.writable(request, p["type"], _repo_id(p), pull_request=True)
        payload = request.json()
        stored = repo.lfs_size(p["oid"])
        expected = payload.get("size") if isinstance(payload, dict) else None
        if stored is None or (expected is not None and stored != expected):
            raise Unprocessable(f"LFS object {p['oid']} is not stored with size {expected}")
        return Response.json({})

    # ---- reads --------------------------------------------------------------------------------
    def _expanded(self, repo: Repo, sha: str, entry: dict) -> dict:
        oid, commit = repo.last_commit(sha, entry["path"])
        return {**entry, "lastCommit": {"id": oid, "title": commit.title, "date": commit.date}}

    def _dir_entry(self, path: str, oid: str) -> dict:
        return {"type": "directory", "oid": oid, "size": 0, "path": path}

    def paths_info(self, request: Request) -> Response:
        p = request.params
        repo = self.readable(request, p["type"], _repo_id(p))
        sha, _ = repo.resolve(p["rev"])
        snap = repo.snapshot(sha)
        content_type = request.header("content-type") or ""
        if "json" in content_type:
            payload = request.json()
            paths = payload.get("paths") or [] if isinstance(payload, dict) else []
            expand = bool(payload.get("expand")) if isinstance(payload, dict) else False
        else:
            form = request.form()
            paths = form.get("paths", [])
            expand = (form.get("expand") or ["false"])[0].lower() in ("1", "true")
        out = []
        for raw in paths:
            path = raw.strip("/")
            if path in snap.files:
                entry = _entry(repo.file_info(path, snap.files[path]))
            elif path and path in snap.dirs:
                entry = self._dir_entry(path, snap.dirs[path])
            else:
                continue
            out.append(self._expanded(repo, sha, entry) if expand else entry)
        return Response.json(out)

    def _cursor(self, sha: str, offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps([sha, offset]).encode()).decode()

    def _page_link(self, request: Request, extra: dict[str, str]) -> str:
        query = {k: v[0] for k, v in request.query.items()}
        query.update(extra)
        return f'<{request.base_url}{request.path}?{urlencode(query)}>; rel="next"'

    def tree(self, request: Request) -> Response:
        p = request.params
        repo = self.readable(request, p["type"], _repo_id(p))
        cursor = request.arg("cursor")
        offset = 0
        if cursor:
            try:
                sha, offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            except (ValueError, TypeError, binascii.Error):
                raise BadRequest("Invalid cursor")
        else:
            sha, _ = repo.resolve(p["rev"])
        snap = repo.snapshot(sha)
        root = p.get("path", "").strip("/")
        if root and root not in snap.dirs:
            raise EntryNotFound(f"{root} does not exist (or is not a folder) at {p['rev']}")
        prefix = f"{root}/" if root else ""
        recursive, expand = request.flag("recursive"), request.flag("expand")
        entries: list[tuple[str, bool, str]] = []  # (path, is_file, oid)
        for path, oid in snap.dirs.items():
            if path and path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :]):
                entries.append((path, False, oid))
        for path, oid in snap.files.items():
            if path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :]):
                entries.append((path, True, oid))
        entries.sort()
        size = self.transfer.tree_expand_page_size if expand else self.transfer.tree_page_size
        page = entries[offset : offset + size]
        out = []
        for path, is_file, oid in page:
            entry = _entry(repo.file_info(path, oid)) if is_file else self._dir_entry(path, oid)
            out.append(self._expanded(repo, sha, entry) if expand else entry)
        headers = {}
        if offset + size < len(entries):
            headers["Link"] = self._page_link(request, {"cursor": self._cursor(sha, offset + size)})
        return Response.json(out, headers=headers)

    def refs(self, request: Request) -> Response:
        p = request.params
        repo = self.readable(request, p["type"], _repo_id(p))

        def shape(refs) -> list[dict]:
            return [{"name": r.name, "ref": r.ref, "targetCommit": r.target} for r in refs]

        body = {"branches": shape(repo.refs("heads")), "tags": shape(repo.refs("tags")), "converts": []}
        if request.flag("include_prs"):
            body["pullRequests"] = shape(repo.refs("pr"))
        return Response.json(body)

    def commits(self, request: Request) -> Response:
        p = request.params
        repo = self.readable(request, p["type"], _repo_id(p))
        sha, _ = repo.resolve(p["rev"])
        page = int(request.arg("p") or 0)
        size = self.transfer.commits_page_size
        history = list(repo.history(sha))
        out = [
            {
                "id": oid,
                "title": commit.title,
                "message": commit.message,
                "authors": [{"user": commit.author, "avatar": ""}],
                "date": commit.date,
            }
            for oid, commit in history[page * size : (page + 1) * size]
        ]
        headers = {}
        if (page + 1) * size < len(history):
            headers["Link"] = self._page_link(request, {"p": str(page + 1)})
        return Response.json(out, headers=headers)

    def branch_create(self, request: Request) -> Response:
        p = request.params
        repo = self.owned(request, p["type"], _repo_id(p))
        payload = request.json()
        starting_point = payload.get("startingPoint") if isinstance(payload, dict) else None
        repo.create_branch(p["branch"], starting_point)
        return Response.json({})

    def branch_delete(self, request: Request) -> Response:
        p = request.params
        self.owned(request, p["type"], _repo_id(p)).delete_branch(p["branch"])
        return Response.json({})

    def tag_create(self, request: Request) -> Response:
        p = request.params
        repo = self.owned(request, p["type"], _repo_id(p))
        payload = request.json()
        tag = payload.get("tag") if isinstance(payload, dict) else None
        if not isinstance(tag, str) or not tag:
            raise BadRequest("Body must be a JSON object with a tag")
        repo.create_tag(tag, p["rev"])
        return Response.json({})

    def tag_delete(self, request: Request) -> Response:
        p = request.params
        self.owned(request, p["type"], _repo_id(p)).delete_tag(p["tag"])
        return Response.json({})

    def resolve(self, request: Request) -> Response:
        p = request.params
        repo = self.readable(request, _web_type(p), _repo_id(p))
        sha, _ = repo.resolve(p["rev"])
        path = p["path"]
        oid = repo.snapshot(sha).files.get(path)
        if oid is None:
            raise EntryNotFound(f"{path} does not exist at {p['rev']}", headers={"X-Repo-Commit": sha})
        info = repo.file_info(path, oid)
        headers = {
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
        if info.lfs is not None:
            headers.update({"ETag": f'"{info.lfs.oid}"', "X-Linked-Etag": f'"{info.lfs.oid}"'})
            headers["X-Linked-Size"] = str(info.size)
            if self.xet is not None:
                token_path = f"/api/{_web_type(p)}s/{_repo_id(p)}/xet-read-token/{sha}"
                headers.update(read_headers(self.xet, request.base_url, token_path, info.lfs.oid))
            source: bytes | Path = repo.read_lfs(info.lfs.oid)
        else:
            headers["ETag"] = f'"{info.oid}"'
            source = repo.blob(oid)
        total = info.size
        span = _parse_range(request.header("range") or "", total) if request.header("range") else None
        if total == 0 or span is None:
            start, length, status = 0, total, 200
        else:
            start, length, status = span[0], span[1] - span[0] + 1, 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{total}"
        if isinstance(source, Path):
            body: bytes | FileSlice = FileSlice(source, start, length)
        else:
            body = source[start : start + length]
        return Response(status=status, body=body, headers=headers)


def error_response(error: HubError) -> Response:
    headers = {"X-Error-Message": error.message.encode("ascii", "replace").decode()[:500]}
    if error.code:
        headers["X-Error-Code"] = error.code
    headers.update(error.headers)
    return Response.json({"error": error.message}, status=error.status, headers=headers)
