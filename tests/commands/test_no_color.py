"""NO_COLOR=1 (https://no-color.org) turns colour off on a terminal: an outsider who had set it
still got the `error:` line in red (Click colours whenever the stream is a terminal)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest


def _on_a_terminal(args: list[str], **env: str) -> bytes:
    """What the command writes to a terminal (a pseudo-terminal for stdout and stderr)."""
    main, child = pty.openpty()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "hubpress.commands.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
            env={k: v for k, v in os.environ.items() if k != "NO_COLOR"} | env,
            timeout=120,
        )
        os.close(child)
        child = -1
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end closed: everything was read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)
    assert run.returncode == 1
    return out


@pytest.mark.parametrize(
    "args", [["scan", "no-such-folder"], ["publish-dataset", "no-such-folder", "./out"]], ids=lambda a: a[0]
)
def test_no_color_keeps_the_error_line_plain_on_a_terminal(tmp_cwd, args):
    coloured = _on_a_terminal(args)
    assert b"\x1b[" in coloured and b"error: " in coloured  # a terminal: colour, unless asked
    plain = _on_a_terminal(args, NO_COLOR="1")
    assert b"\x1b[" not in plain, plain
    assert plain.startswith(b"error: source ") and b"no-such-folder does not exist" in plain
