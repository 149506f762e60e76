"""A hubpress.api call stopped by SIGTERM says so in one line on the console, as the CLI does.

Prefect's own SIGTERM handler (installed over hubpress's during a flow run) logged "Crash
detected! Execution was aborted by a termination signal." on its console handler before
hubpress's handler ran, so a script's stderr had Prefect's crash line above hubpress's
`terminated (SIGTERM): ...` line. The record is kept from Prefect's console handler only: other
handlers (the Prefect API's, a host program's own) still get it."""

from __future__ import annotations

import io
import logging
import os
import signal

import pytest

from hubpress.testdata.synth import write_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")


class _Kill(logging.Handler):
    """The host program's own handler: it sends SIGTERM once a task of the run has logged (a
    supervisor stopping the job mid-run), and keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record in self.seen:  # attached to the root and to "prefect": a record may come twice
            return
        self.seen.append(record)
        self.messages.append(record.getMessage())
        if record.name.startswith("prefect.task_runs") and "sent" not in self.messages:
            self.messages.append("sent")
            os.kill(os.getpid(), signal.SIGTERM)  # to the main thread, where the API call runs


def test_sigterm_during_an_api_call_is_one_line_on_the_console(tmp_path, monkeypatch, capsys):
    import prefect.main  # noqa: F401  (Prefect's console handler exists once this is loaded)

    from hubpress import api
    from hubpress.orchestration.console import _prefect_console_handlers

    write_dataset(tmp_path / "src", samples=2, test_fraction=0.0, image_size=16, seed=5)
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    console = io.StringIO()
    handlers = _prefect_console_handlers()
    streams = [handler.console.file for handler in handlers]  # the handler writes through rich
    for handler in handlers:
        handler.console.file = console
    kill = _Kill()
    # Prefect's logging configuration keeps "prefect" records from the root once a flow has run in
    # this process (propagate: false); the "prefect" logger sees them either way.
    watched = [logging.getLogger(), logging.getLogger("prefect")]
    for logger in watched:
        logger.addHandler(kill)
    # An in-process CLI run earlier in the session may have left "prefect" at WARNING: the task's
    # INFO record this test waits for would then never be made.
    level = logging.getLogger("prefect").level
    logging.getLogger("prefect").setLevel(logging.INFO)
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a script's own: whatever an earlier test left is not
    try:
        with pytest.raises(SystemExit) as stopped:
            api.upload_editing_dataset(str(tmp_path / "src"), str(tmp_path / "out"))
    finally:
        for logger in watched:
            logger.removeHandler(kill)
        logging.getLogger("prefect").setLevel(level)
        for handler, stream in zip(handlers, streams, strict=True):
            handler.console.file = stream
        signal.signal(signal.SIGTERM, before)

    assert stopped.value.code == 143 and "sent" in kill.messages
    assert any(m.startswith("Crash detected! Execution was aborted by a termination") for m in kill.messages)
    assert handlers and "Crash detected" not in console.getvalue(), console.getvalue()
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert [line for line in said if "terminated (SIGTERM)" in line] == [
        f"hubpress: terminated (SIGTERM): nothing was written to local directory {tmp_path / 'out'}; "
        "it is as it was before this run."
    ], said
