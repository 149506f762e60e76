"""Run the Hub-protocol server standalone.

    python -m tests.hubserver --port 8080 --data /tmp/hub --token alice=hf_xxx:write
    python -m tests.hubserver ... --latency-ms 50 --mbytes-per-s 40     # a realistic uplink
    python -m tests.hubserver ... --read-only hf_xxx=dataset/alice/data  # that token may only read it
    python -m tests.hubserver ... --lfs-files-per-commit 3 --regular-bytes-per-commit 1000  # small limits

Prints one line, `READY http://127.0.0.1:PORT`, once it accepts requests; stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .limits import HubLimits
from .link import Link
from .scopes import parse_read_only
from .server import HubServer


def _token(spec: str) -> tuple[str, tuple[str, str]]:
    """NAME=TOKEN:ROLE -> (TOKEN, (NAME, ROLE))."""
    name, sep, rest = spec.partition("=")
    token, sep2, role = rest.rpartition(":")
    if not sep or not sep2 or not name or not token or role not in ("read", "write"):
        raise argparse.ArgumentTypeError("expected NAME=TOKEN:write or NAME=TOKEN:read")
    return token, (name, role)


def _read_only(spec: str) -> tuple[str, str]:
    try:
        return parse_read_only(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _group(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for token, repo in pairs:
        grouped.setdefault(token, set()).add(repo)
    return grouped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hubserver", description=__doc__.split("\n")[1])
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", type=Path, required=True, help="directory holding the repos")
    parser.add_argument("--token", type=_token, action="append", default=[], metavar="NAME=TOKEN:ROLE")
    parser.add_argument(
        "--read-only",
        type=_read_only,
        action="append",
        default=[],
        metavar="TOKEN=TYPE/NS/NAME",
        help="the token may only read that repo (a fine-grained token without repo.write there)",
    )
    parser.add_argument("--multipart-threshold", type=int, default=50 * 1024 * 1024)
    parser.add_argument("--multipart-chunk-size", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every response (default 0)")
    parser.add_argument(
        "--mbytes-per-s",
        type=float,
        default=None,
        help="request and response bodies paced to this rate (MB/s), shared by all connections",
    )
    parser.add_argument(
        "--no-xet", action="store_true", help="serve the LFS path only (no Xet tokens), as older Hubs do"
    )
    defaults = HubLimits()
    parser.add_argument(
        "--lfs-files-per-commit",
        type=int,
        default=defaults.lfs_files_per_commit,
        help=f"LFS files one commit may add (default {defaults.lfs_files_per_commit:,}, the Hub's)",
    )
    parser.add_argument(
        "--regular-bytes-per-commit",
        type=int,
        default=defaults.regular_bytes_per_commit,
        help=f"bytes of regular files one commit may carry (default {defaults.regular_bytes_per_commit:,})",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0 or (args.mbytes_per_s is not None and args.mbytes_per_s <= 0):
        parser.error("--latency-ms must be >= 0 and --mbytes-per-s > 0")

    server = HubServer(
        data_dir=args.data,
        port=args.port,
        tokens=dict(args.token),
        host=args.host,
        multipart_threshold=args.multipart_threshold,
        multipart_chunk_size=args.multipart_chunk_size,
        link=Link(args.latency_ms, args.mbytes_per_s),
        read_only=_group(args.read_only),
        xet=not args.no_xet,
        limits=HubLimits(
            lfs_files_per_commit=args.lfs_files_per_commit,
            regular_bytes_per_commit=args.regular_bytes_per_commit,
        ),
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    print(f"READY {server.url}", flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
