"""Request and response values passed between the HTTP transport (handler.py) and the endpoints (app.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from .errors import BadRequest


@dataclass(slots=True)
class Request:
    method: str
    path: str  # raw (still percent-encoded) path, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    params: dict[str, str]  # route parameters, percent-decoded
    body_chunks: Callable[[], Iterator[bytes]]  # the body, read once, in chunks

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() in ("1", "true", "yes")

    def body(self) -> bytes:
        return b"".join(self.body_chunks())

    def json(self) -> object:
        raw = self.body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"Request body is not valid JSON: {exc}")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body().decode(), keep_blank_values=True)

    @property
    def base_url(self) -> str:
        """The server's URL as the client addressed it (upload links must point back at it)."""
        return f"http://{self.headers.get('host', '127.0.0.1')}"


@dataclass(frozen=True, slots=True)
class FileSlice:
    path: Path
    start: int
    length: int


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes | FileSlice = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status=status,
            body=json.dumps(value).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )

    @property
    def length(self) -> int:
        return self.body.length if isinstance(self.body, FileSlice) else len(self.body)
