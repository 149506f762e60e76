"""The `hubpress` console script's entry point, and what only a process that runs one command and
exits may do about Ctrl-C.

pip's script imports this module outside any handler, so it imports nothing heavy: the command line
is imported inside main(), and Ctrl-C during that import (a second or more on a busy machine:
Typer, pydantic, every command module) gives the one `interrupted:` line and exit 130, not a
traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from hubpress.commands.interrupt import (  # stdlib only
    INTERRUPTED_EXIT_CODE,
    TERMINATED_EXIT_CODE,
    interrupted_line,
    runs_one_command,
)


def main() -> None:
    try:
        from hubpress.commands.cli import main as run
    except KeyboardInterrupt:
        line = interrupted_line(sys.argv[1:], left="it was still starting: nothing was done")
        sys.stderr.write(line + "\n")
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
    run_as_a_process(run)


def run_as_a_process(run: Callable[[], None]) -> None:
    """Run the command; once it has said its `interrupted:` line and exits 130, further Ctrl-C is
    ignored: it would land in an exit hook (Prefect's atexit stop of its temporary server) as a
    traceback and exit -2, and could leave that server running. Those hooks are bounded (Prefect
    kills its server after 5 s). Only here, in the process's own entry: a script or test that calls
    hubpress.commands.cli.main in-process keeps its Ctrl-C."""
    runs_one_command()
    try:
        run()
    except SystemExit as exc:
        if exc.code in (INTERRUPTED_EXIT_CODE, TERMINATED_EXIT_CODE):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise
