"""A program that calls hubpress.api keeps its own answer to SIGTERM during the call.

interruptible() takes SIGTERM so that `kill` of a publish tidies the Hub and exits 143 (the
default would kill the process there). A host program that set its own SIGTERM handler (a
service's graceful shutdown) had it replaced for the call: its handler never ran. It is now called
first, then the call stops as before; the handler is the host's again after the call."""

from __future__ import annotations

import os
import signal

import pytest

from hubpress.commands.interrupt import interruptible


@pytest.fixture
def host_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def test_a_host_programs_sigterm_handler_runs_and_the_call_stops_tidily(host_sigterm):
    seen: list[int] = []

    def host(signum, frame):
        seen.append(signum)

    signal.signal(signal.SIGTERM, host)
    lines: list[str] = []
    with pytest.raises(SystemExit) as stopped, interruptible(lines.append):
        os.kill(os.getpid(), signal.SIGTERM)
    assert seen == [signal.SIGTERM]
    assert stopped.value.code == 143 and lines and lines[0].startswith("terminated (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) is host


def test_the_default_sigterm_is_taken_for_the_call_and_given_back(host_sigterm):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    lines: list[str] = []
    with pytest.raises(SystemExit) as stopped, interruptible(lines.append):
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 143 and lines and lines[0].startswith("terminated (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
