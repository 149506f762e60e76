"""Ctrl-C during a command: stop promptly, tidy the Hub, say so in one line, exit 130.

Without this, Ctrl-C during an upload was lost for as long as the upload ran: Python raises
KeyboardInterrupt in the main thread only, where the flow waits for its tasks; the uploads run in
the task runner's threads (hf_xet's own Rust threads under them), and Prefect's task runner waits
for running tasks as the flow unwinds, so the publish went on to the end. Then Click caught the
KeyboardInterrupt and printed an empty line, and an empty private repo created by the run stayed.

Now, for the duration of a flow run, SIGINT (the terminal sends it to the whole process group)
first cancels hf_xet's in-flight uploads (huggingface_hub's own answer to Ctrl-C), so the task
threads fail at once, then raises KeyboardInterrupt as Python would. When it reaches the command,
hubpress.targets.interrupted deletes an empty repo this run created, and one line says what state
each repo is in. A second Ctrl-C during that tidy-up leaves at once (repos unchecked).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
TERMINATED_EXIT_CODE = 143  # 128 + SIGTERM: `kill`, timeout(1), systemd, a CI job cancelled


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run: stopped and tidied as Ctrl-C is, then the process exits 143.

    Prefect answers SIGTERM inside a flow run with its own handler (the run is marked crashed),
    then hands the signal on to the handler that was there before: this one. Before, that was the
    default, which killed the process there: an empty repo the run had created stayed, the
    terminal got Prefect's crash record, and no exit hook ran (a temporary Prefect server stayed)."""


def cancel_uploads() -> None:
    """Cancel hf_xet's in-flight uploads and downloads (their threads then raise), as
    huggingface_hub does when Ctrl-C reaches the thread that waits on them."""
    from hubpress.targets import interrupted

    interrupted.request_stop()
    if "huggingface_hub.utils._xet" not in sys.modules:
        return
    from huggingface_hub.utils._xet import abort_xet_session

    abort_xet_session()


class _Silenced(logging.Filter):
    """After Ctrl-C, the task threads' last words (a cancelled upload, a client retrying a request
    that was under way) are not news at the terminal: the `interrupted:` line says what matters.
    Logs sent to the Prefect API are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_SILENCED = _Silenced()
_silenced: list[logging.Handler] = []


def _quiet_terminal() -> None:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.addFilter(_SILENCED)
                _silenced.append(handler)


def _speak_again() -> None:
    while _silenced:
        _silenced.pop().removeFilter(_SILENCED)


# A host program's own SIGTERM handler (hubpress.api called from a service with a graceful
# shutdown), in place while interruptible() holds SIGTERM: it is called first, then the run stops.
_host_sigterm: list[Callable] = []


def _on_sigint(signum, frame) -> None:
    if signum == signal.SIGTERM and _host_sigterm:
        _host_sigterm[-1](signum, frame)
    cancel_uploads()
    _quiet_terminal()
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


@contextmanager
def interruptible(say: Callable[[str], None]) -> Iterator[None]:
    """Run a flow so that Ctrl-C stops it as described in the module's docstring: `say` gets the
    one `interrupted:` line, and KeyboardInterrupt goes on to the caller (the CLI exits 130 on it,
    a script that calls hubpress.api gets it as from any Python call)."""
    from hubpress.targets import interrupted

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    interrupted.forget()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    previous_term = signal.signal(signal.SIGTERM, _on_sigint)
    host = callable(previous_term) and previous_term is not _on_sigint
    if host:
        _host_sigterm.append(previous_term)
    ctrl_c_ignored_to_the_end = False  # the console script's, once its line is said
    try:
        yield
    except KeyboardInterrupt as stopped:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _exit_at_once)  # a second SIGTERM leaves the tidy-up
        try:
            states = interrupted.after_interrupt()
        except (KeyboardInterrupt, SystemExit):
            states = [
                "a second Ctrl-C (or SIGTERM) came before the Hub repos this run used were checked: look at "
                "them there"
            ]
        said = "; ".join(states) if states else "nothing was sent to the Hub"
        if _Process.runs_one_command:
            # Before the line: an impatient second Ctrl-C between the line and the process's end
            # (the tidy-up here, Prefect's atexit stop of its temporary server) was a traceback.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            ctrl_c_ignored_to_the_end = True
        say(f"{'terminated (SIGTERM)' if isinstance(stopped, Terminated) else 'interrupted'}: {said}.")
        if isinstance(stopped, Terminated):
            # SystemExit, not an exception a script might take for Ctrl-C: exit hooks still run.
            raise SystemExit(TERMINATED_EXIT_CODE) from None
        raise
    finally:
        if host:
            _host_sigterm.pop()
        if not ctrl_c_ignored_to_the_end:
            signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        _speak_again()


class _Process:
    """Whether this process is the console script's (hubpress.commands.entry): it runs one command
    and exits, so once its `interrupted:` line is said, a further Ctrl-C has nothing left to stop."""

    runs_one_command = False


def runs_one_command() -> None:
    _Process.runs_one_command = True


def _exit_at_once(signum, frame) -> None:
    raise SystemExit(TERMINATED_EXIT_CODE)


@contextmanager
def command_interruptible() -> Iterator[None]:
    """interruptible() for a command: the line on stderr, then exit 130."""
    import typer  # here, not at the top: the console script's entry imports this module as it starts

    try:
        with interruptible(lambda line: typer.secho(line, err=True, fg=typer.colors.YELLOW)):
            yield
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED_EXIT_CODE) from None


# What a command that runs no flow leaves behind when Ctrl-C stops it (the flows' commands say
# what state each Hub repo is in, through interruptible()).
_LEFT_BEHIND = {
    "scan": "nothing was sent anywhere; files --fix-source renamed so far stay renamed, run it again to finish",
    "download-lora": "huggingface_hub keeps the partial download in its cache and resumes it next time",
    "serve": "its deployments are no longer served; runs a worker already started go on there",
    "staging": "stages removed so far are gone, the others are kept",
    "server": "run `hubpress server status` to see whether the server is up",
    "training-finished": "the event may not have been sent: run it again",
}


def stopped_without_a_word(exc: BaseException) -> bool:
    """True when Ctrl-C stopped a command that runs no flow: Typer turns the KeyboardInterrupt into
    exit 130 and says nothing. (interruptible() has said its line already and cut the chain.)"""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return False


def interrupted_line(args: list[str], left: str | None = None) -> str:
    """The one line for a command stopped by Ctrl-C outside a flow run (or, with `left`, before
    it had started one)."""
    command = next((a for a in args if not a.startswith("-")), "")
    left = left or _LEFT_BEHIND.get(command, "nothing was sent to the Hub")
    return f"interrupted: hubpress {command} stopped before it finished; {left}.".replace("  ", " ")
