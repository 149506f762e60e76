"""What the Python API prints: hubpress's warnings and errors, not Prefect's INFO lines.

The CLI sets PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=WARNING before Prefect configures its logging;
the API runs inside someone else's process, where Prefect may already be configured, so it lowers
Prefect's console handlers for the duration of a call and puts them back. Runs still log
everything to the Prefect API and its UI. A user who wants the INFO lines on the console sets
PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO (or HUBPRESS_DEBUG=1), and nothing is changed.
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


@contextmanager
def quiet_prefect_console(level: int = logging.WARNING) -> Iterator[None]:
    """Prefect's console handlers show `level` and above inside the block, unless the user chose."""
    if os.environ.get("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL") or os.environ.get("HUBPRESS_DEBUG"):
        yield
        return
    import prefect.main  # noqa: F401  (Prefect's logging handlers exist once this is loaded)

    saved = [(handler, handler.level) for handler in _prefect_console_handlers()]
    for handler, old in saved:
        handler.setLevel(max(old, level))
    try:
        yield
    finally:
        for handler, old in saved:
            handler.setLevel(old)
