"""What the Python API prints: hubpress's warnings and errors, not Prefect's INFO lines.

The CLI sets PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=WARNING before Prefect configures its logging;
the API runs inside someone else's process, where Prefect may already be configured, so it lowers
Prefect's console handlers for the duration of a call and puts them back. Runs still log
everything to the Prefect API and its UI. A user who wants the INFO lines on the console sets
PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO (the level is then left as chosen) or HUBPRESS_DEBUG=1
(nothing is changed).

Prefect's crash record of a Ctrl-C or SIGTERM ("Crash detected! Execution was aborted by ...") is
left out of the console as the CLI leaves it out: hubpress's own `interrupted:` line says it, with
the repo's state. On SIGTERM, Prefect's own handler (installed over hubpress's during a flow run)
logged it before hubpress's ran, so a call stopped by `kill` printed two lines. The record still
reaches the Prefect API and its UI (another handler).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager


def _prefect_console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                found[id(handler)] = handler
    return list(found.values())


SIGNAL_CRASH = (  # how Prefect's records of a run stopped by Ctrl-C or SIGTERM begin
    "Crash detected! Execution was aborted by an interrupt",
    "Crash detected! Execution was aborted by a termination",
)
# The state Prefect records for each run and task run the signal stopped, as its "Finished in state
# ..." line says it (prefect.states: the message of a Crashed state from a KeyboardInterrupt or
# TerminationSignal): a task stopped mid-commit logged it at ERROR beside the command's own line.
SIGNAL_CRASHED_STATE = (
    "Finished in state Crashed('Execution was aborted by an interrupt signal.')",
    "Finished in state Crashed('Execution was aborted by a termination signal.')",
)


def is_signal_crash(message: str) -> bool:
    """Prefect's record of a run or task run stopped by Ctrl-C or SIGTERM: the command says that
    itself, in its one `interrupted:`/`terminated` line (the Prefect UI keeps the record)."""
    return message.startswith(SIGNAL_CRASH) or message in SIGNAL_CRASHED_STATE


class _NoSignalCrash(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_signal_crash(record.getMessage())


_NO_SIGNAL_CRASH = _NoSignalCrash()


@contextmanager
def quiet_prefect_console(level: int = logging.WARNING) -> Iterator[None]:
    """Prefect's console handlers show `level` and above inside the block, unless the user chose,
    and never Prefect's crash record of Ctrl-C or SIGTERM (unless HUBPRESS_DEBUG)."""
    if os.environ.get("HUBPRESS_DEBUG"):
        yield
        return
    import prefect.main  # noqa: F401  (Prefect's logging handlers exist once this is loaded)

    chose = bool(os.environ.get("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"))
    saved = [(handler, handler.level) for handler in _prefect_console_handlers()]
    for handler, old in saved:
        handler.setLevel(old if chose else max(old, level))
        handler.addFilter(_NO_SIGNAL_CRASH)
    try:
        yield
    finally:
        for handler, old in saved:
            handler.setLevel(old)
            handler.removeFilter(_NO_SIGNAL_CRASH)
