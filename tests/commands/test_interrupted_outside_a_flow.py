"""Ctrl-C during a command that runs no flow (scan, staging, download-lora, ...): exit 130 and one
line saying what was left, not Typer's silent 130. (A real SIGINT to a scan was checked by hand; the
flows' own line is pinned by tests/e2e/test_interrupt.py, which also shows it is not said twice.)"""

from __future__ import annotations

import pytest

from hubpress.commands.cli import main
from hubpress.testdata.synth import write_dataset


def _stopped_by_ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_a_scan_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    import hubpress.sources.intake

    write_dataset(tmp_path / "src", samples=2, test_fraction=0.0, image_size=8, seed=3)
    monkeypatch.setattr(hubpress.sources.intake, "run_intake", _stopped_by_ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        main(["scan", str(tmp_path / "src")])
    assert stopped.value.code == 130
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "interrupted: hubpress scan stopped before it finished; nothing was sent anywhere; files "
        "--fix-source renamed so far stay renamed, run it again to finish."
    ]


def test_ctrl_c_during_staging_clean_says_what_was_kept(tmp_path, monkeypatch, capsys):
    import hubpress.shards.runs

    (tmp_path / "staging").mkdir()  # a staging that is not there is refused before the sweep
    monkeypatch.setenv("HUBPRESS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setattr(hubpress.shards.runs, "sweep", _stopped_by_ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        main(["staging", "clean", "--all"])
    assert stopped.value.code == 130
    assert capsys.readouterr().err.splitlines() == [
        "interrupted: hubpress staging stopped before it finished; stages removed so far are gone, the others are kept."
    ]


# The console script, as pip writes it: the entry point's module is imported, then main() called.
# Ctrl-C arrives while the command modules are being imported (a second or more on a busy machine).
_CONSOLE_SCRIPT_CTRL_C_WHILE_IMPORTING = """
import importlib.abc, importlib.metadata, os, signal, sys

# As in a terminal, whose foreground command never starts with Ctrl-C ignored (a test runner
# started in the background of a non-interactive shell passes SIGINT on ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)

class CtrlCDuringImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hubpress.commands.scan":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCDuringImport())
sys.argv = ["hubpress", "scan", sys.argv[1]]
(entry,) = importlib.metadata.entry_points(group="console_scripts", name="hubpress")
sys.exit(entry.load()())
"""


def test_ctrl_c_while_the_command_starts_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    write_dataset(tmp_path / "src", samples=2, test_fraction=0.0, image_size=8, seed=3)
    done = subprocess.run(
        [sys.executable, "-c", _CONSOLE_SCRIPT_CTRL_C_WHILE_IMPORTING, str(tmp_path / "src")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines() == [
        "interrupted: hubpress scan stopped before it finished; it was still starting: nothing was done."
    ]
    assert done.stdout == ""
