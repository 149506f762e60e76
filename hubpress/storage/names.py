"""The one gate where an input name becomes a filesystem path, a path in a repo, a git ref or a
cache key.

Every name hubpress did not make itself (an S3 key, a CSV cell, a file name, a config value, an
extra file's destination, a tag) passes here before it is joined to a root. A name is refused
when it is empty, absolute, holds a NUL or another control character, a backslash, an empty
segment (`a//b`), a `.` or `..` segment, a segment over 255 bytes or a whole over 1,024 bytes (no
file system here could hold it), or when the joined path would leave its root (through a symlink,
say). Refusals carry the kind of problem and a one-line reason naming the input, so
a listing can report the file and a command can stop with one line.

    relpath("samples/a.png", what="S3 key")          -> "samples/a.png"
    inside("/staging", "fp/data/x.parquet")          -> Path("/staging/fp/data/x.parquet")
    git_ref("v1.0", what="--tag")                    -> "v1.0"
    cache_key("my-backend")                          -> "my-backend"

Names a remote gives (a Hub answer, a repo listing, a manifest's `files`, an upstream row's media
path, a redirect) pass the same rules through `remote_path`, which also refuses a name whose
percent-decoded form is unsafe (`%2e%2e/x`), and `repo_file_url`, the one rule for where upstream
media may come from: a file of the upstream repo itself, at the pinned revision.

    remote_path("data/train-1.parquet", what="listed file")         -> "data/train-1.parquet"
    repo_file_url("hf://datasets/o/n@<sha>/a.png", "dataset", "o/n", "<sha>")  -> "a.png"
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hubpress.errors import ConfigError

UNSAFE_NAME = "unsafe_name"  # the problem kind of a refused name
MEDIA_OUTSIDE_UPSTREAM = "media_outside_upstream"  # a row's media names a file elsewhere

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 (U+0085 is a line end to many tools)
# Characters that break or reorder the line showing a name: the line and paragraph separators
# (a new line in many terminals and log viewers) and the bidirectional controls (U+202E shows
# `x\u202egnp.exe` as `xexe.png`). A name holding one is refused like a control character.
_LINE_BREAKING = re.compile("[\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DRIVE = re.compile(r"^[A-Za-z]:")
# git check-ref-format: no "..", no ASCII control, space, ~ ^ : ? * [ \, no "@{", not "@",
# no component starting with "." or ending with ".lock", no trailing "." or "/", no "//".
_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_SEGMENT_BYTES = 255  # NAME_MAX: one file or folder name
MAX_NAME_BYTES = 1024  # an S3 key's limit: every name a store hubpress reads can hold


class UnsafeNameError(ConfigError):
    """A name would escape its root or cannot be a path, ref or key. `kind` is the problem kind."""

    def __init__(self, message: str, name: str, kind: str = UNSAFE_NAME):
        super().__init__(message)
        self.name = name
        self.kind = kind


def _shown(name: str) -> str:
    return repr(name) if len(name) <= 200 else repr(name[:200] + "...")


def shown_name(name: str) -> str:
    """`name` for a line of a report, unquoted, with every character the gate refuses for breaking
    or reordering a line (controls, separators, bidi controls) escaped as Python writes it: a
    refused name is still shown, and cannot break the line or read reversed."""
    if name.isascii() and name.isprintable():
        return name
    return _LINE_BREAKING.sub(_escaped, _CONTROL.sub(_escaped, name))


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


# A name every rule of why_unsafe accepts: segments of letters, digits, `_`, `-` and `.`, none
# starting with a dot (so none is `.` or `..`), no empty segment, no colon, space or control
# character. Most names of a dataset are such names: one match instead of the rules one by one
# (why_unsafe runs for every listed file).
PLAIN_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")


def why_unsafe(name: str) -> str | None:
    """Why `name` cannot be a relative POSIX path below a root, or None when it can. Pure."""
    if not isinstance(name, str) or name == "":
        return "is empty"
    if len(name) <= MAX_SEGMENT_BYTES and PLAIN_PATH.fullmatch(name):
        return None
    if "\x00" in name:
        return "contains a NUL character"
    if _CONTROL.search(name):
        return "contains a control character"
    if _LINE_BREAKING.search(name):
        return "contains a line separator or a bidirectional control character"
    if "\\" in name:
        return "contains a backslash; use / between folders"
    if name.startswith("/"):
        return "is absolute; it must be relative to its root"
    if _DRIVE.match(name) or "://" in name:
        return "is a URL or a drive path; it must be relative to its root"
    parts = name.split("/")
    if "" in parts:
        return "has an empty segment (// or a trailing /)"
    if ".." in parts:
        return "has a '..' segment: it would leave its root"
    if "." in parts:
        return "has a '.' segment"
    return _too_long(name, parts)


def _too_long(name: str, parts: list[str]) -> str | None:
    """A name no file system or store here can hold: a segment over NAME_MAX (255 bytes on Linux
    and macOS), or the whole over an S3 key's 1,024 bytes."""
    if len(name) <= MAX_SEGMENT_BYTES and name.isascii():
        return None
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES:,} bytes"
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES for part in parts):
        return f"has a segment longer than {MAX_SEGMENT_BYTES} bytes, more than a file name may be"
    return None


def relpath(name: str, *, what: str = "name") -> str:
    """`name` as a safe relative POSIX path, or UnsafeNameError naming it and why."""
    why = why_unsafe(name)
    if why is not None:
        raise UnsafeNameError(f"{what} {_shown(name)} {why}.", name)
    return name


def is_safe(name: str) -> bool:
    return why_unsafe(name) is None


def is_inside(real: str, real_root: str) -> bool:
    """`real` is `real_root` or a path under it (both already resolved): the one test of "stays
    inside" for names, listings, reads and a Xet CAS folder."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def inside(root: str | Path, name: str, *, what: str = "name", follow_links: bool = True) -> Path:
    """root/name after checking the name, and that the result (symlinks resolved, when
    `follow_links`) stays inside root. The path itself need not exist."""
    rel = relpath(name, what=what)
    base = Path(os.path.abspath(root))
    joined = base.joinpath(*rel.split("/"))
    if follow_links:
        real_base = os.path.realpath(base)
        real = os.path.realpath(joined)
        if not is_inside(real, real_base):
            raise UnsafeNameError(
                f"{what} {_shown(name)} leads outside {base} (through a symbolic link).", name
            )
    return joined


def path_in_repo(name: str, *, what: str = "path in the repo") -> str:
    """A path a file takes in a Hub repo or a local target. Same rules as `relpath`; the Hub also
    refuses paths inside .git/."""
    rel = remote_path(name, what=what)  # a name that decodes to an unsafe one is refused too
    if rel.split("/", 1)[0] == ".git":
        raise UnsafeNameError(f"{what} {_shown(name)} is inside .git/, which a repo cannot hold.", name)
    return rel


def git_ref(name: str, *, what: str = "ref") -> str:
    """A branch or tag name the way `git check-ref-format --branch` accepts it, or UnsafeNameError.

    `refs/pr/N` (the Hub's pull-request refs) is refused too: nothing may commit or tag there."""
    why = None
    if not isinstance(name, str) or not name:
        why = "is empty"
    elif _REF_BAD.search(name):
        why = "contains '..', '//', '@{', a space, a control character or one of ~ ^ : ? * [ \\"
    elif name == "@" or name.startswith(("/", "-")) or name.endswith(("/", ".")):
        why = "starts with / or -, ends with / or ., or is '@'"
    elif any(p.startswith(".") or p.endswith(".lock") for p in name.split("/")):
        why = "has a part that starts with '.' or ends with '.lock'"
    elif name.startswith("refs/"):
        why = "names a full ref (refs/...); give a branch or tag name"
    if why is not None:
        raise UnsafeNameError(f"{what} {_shown(name)} is not a valid git ref name: it {why}.", name)
    return name


def cache_key(name: str, *, what: str = "id") -> str:
    """A name used as one directory or file name in a cache: letters, digits, '.', '_', '-',
    starting with a letter or digit, at most 128 characters."""
    if not isinstance(name, str) or not _KEY.fullmatch(name) or name in (".", ".."):
        raise UnsafeNameError(
            f"{what} {_shown(name)} cannot name a cache entry: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 128 characters).",
            name,
        )
    return name


# --- names a remote gives -------------------------------------------------------------------------


def remote_path(name: str, *, what: str = "path named by the remote") -> str:
    """A path a remote named, as a safe relative POSIX path: the `relpath` rules, applied to the
    name as sent and to its percent-decoded form (some later step may decode it), or UnsafeNameError."""
    rel = relpath(name, what=what)
    decoded = unquote(rel)
    if decoded != rel and (why := why_unsafe(decoded)) is not None:
        raise UnsafeNameError(f"{what} {_shown(name)} decodes to {_shown(decoded)}, which {why}.", name)
    return rel


def split_remote_paths(paths, *, what: str) -> tuple[list[str], list[UnsafeNameError]]:
    """(the paths that pass `remote_path`, the refusals of the others): a listing with a hostile
    entry is still usable, and every refusal can be reported in one line."""
    kept: list[str] = []
    refused: list[UnsafeNameError] = []
    for path in paths:
        try:
            kept.append(remote_path(path, what=what))
        except UnsafeNameError as exc:
            refused.append(exc)
    return kept, refused


def repo_file_url(url: str, repo_type: str, repo_id: str, revision: str, *, what: str = "media path") -> str:
    """The path in the repo of `url` when it names a file of `repo_id` at exactly `revision`
    (`hf://{repo_type}s/{repo_id}@{revision}/{path}`, how `datasets` names a file beside the data),
    else UnsafeNameError. Anything else (another repo or revision, a local or absolute path,
    file://, http(s)://, `..` in any spelling) is refused: it would be read with this machine's
    token or from its disk, on behalf of whoever wrote the row."""
    if not isinstance(url, str) or not url:
        raise UnsafeNameError(f"{what} {_shown(str(url))} is empty.", str(url), kind=MEDIA_OUTSIDE_UPSTREAM)
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    pinned = f"hf://{prefix}{repo_id}@{revision}/"
    if not url.startswith(pinned):
        scheme = urlsplit(url).scheme if "://" in url else ""
        where = "a file on this machine" if not scheme or scheme == "file" else f"a {scheme}:// location"
        if scheme == "hf":
            where = "another repo or revision"
        raise UnsafeNameError(
            f"{what} {_shown(url)} names {where}, not a file of {repo_id} at {revision[:12]}: "
            "upstream files are read only from the upstream repo at its pinned revision.",
            url,
            kind=MEDIA_OUTSIDE_UPSTREAM,
        )
    try:
        return remote_path(url[len(pinned) :], what=what)
    except UnsafeNameError as exc:
        raise UnsafeNameError(str(exc), url, kind=MEDIA_OUTSIDE_UPSTREAM) from None


# The Hub's commit ids are git SHA-1s: 40 lowercase hex digits (a 64-digit id is an answer hubpress
# cannot use, hubpress.targets.hub_answers).
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


def is_commit_id(value: object) -> bool:
    return isinstance(value, str) and bool(_COMMIT_ID.fullmatch(value))


def commit_id(oid: object, *, what: str = "commit id") -> str:
    """A commit id a Hub answered (40 lowercase hex digits), or UnsafeNameError: it goes into URLs
    and refs, so an answer such as `../x` or `main?x=` is refused, not used."""
    if not is_commit_id(oid):
        raise UnsafeNameError(f"{what} {_shown(str(oid))} is not a commit id (40 hex digits).", str(oid))
    return oid


def answer_url(url: str | None, endpoint: str) -> str | None:
    """A URL a Hub answered (a commit or pull-request URL), made absolute from `endpoint` when it
    is a path, and kept only when it stays on the endpoint's origin without user information and
    without a `..` segment; None otherwise (the caller then names the commit itself)."""
    if not url or not isinstance(url, str) or _CONTROL.search(url):
        return None
    base = urlsplit(endpoint)
    absolute = url if "://" in url else f"{endpoint.rstrip('/')}/{url.lstrip('/')}"
    parts = urlsplit(absolute)
    same_origin = (parts.scheme, parts.hostname, parts.port) == (base.scheme, base.hostname, base.port)
    if not same_origin or parts.username or parts.password or "@" in parts.netloc:
        return None
    if ".." in unquote(parts.path).split("/") or "\\" in parts.path:
        return None
    return absolute


def overlap(source: str, target: str) -> str | None:
    """Why a local `target` cannot be written with `source` as the input, or None.

    A target that is the source, lies inside it or contains it would replace or swallow the data
    being read (the target directory becomes a symlink to a version kept beside it). Both are
    compared with symlinks resolved; an s3:// source never overlaps a local target."""
    if source.startswith("s3://") or target.startswith("s3://"):
        return None
    src = os.path.realpath(os.path.expanduser(source.removeprefix("file://")))
    dst = os.path.realpath(os.path.expanduser(target.removeprefix("file://")))
    if src == dst:
        return f"the target {target} is the source {source}"
    if dst.startswith(src.rstrip(os.sep) + os.sep):
        return f"the target {target} lies inside the source {source}"
    if src.startswith(dst.rstrip(os.sep) + os.sep):
        return f"the target {target} contains the source {source}"
    return None


def file_uri_path(uri: str) -> str:
    """The path a file:// URI names, percent-decoded as RFC 8089 says: `Path("my data").as_uri()`
    writes `file:///.../my%20data`, which names the directory `my data`, not `my%20data`.
    A host other than `localhost` (`file://data/set` meant as a relative path names the host
    `data`), no path, or a NUL byte is refused: taking the path alone would name another folder."""
    parts = urlsplit(uri)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path or "\0" in path:
        raise ConfigError(
            f"{uri!r} does not name a folder of this machine: a file:// URI is file:///absolute/path "
            "(three slashes, no host, no NUL); for a relative path write ./path."
        )
    return path
