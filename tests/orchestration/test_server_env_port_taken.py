"""`hubpress server env` never hands out the address of a server that is not this HUBPRESS_HOME's:
when the local server is stopped and its remembered port is taken by another process (another
environment's server, e.g. production's on 4200), `eval "$(hubpress server env)"` must not point
`prefect`, workers and trainers there."""

from __future__ import annotations

import socket

from tests.conftest import run_cli


def test_a_taken_remembered_port_is_not_printed_as_the_address(tmp_path, monkeypatch):
    home = tmp_path / "dev-home"
    (home / "prefect").mkdir(parents=True)
    with socket.socket() as other:  # another environment's server listening on the remembered port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        (home / "prefect" / "port").write_text(f"{port}\n")
        monkeypatch.setenv("HUBPRESS_HOME", str(home))
        monkeypatch.delenv("HUBPRESS_PREFECT_DIR", raising=False)
        code, out, err = run_cli("server", "env")
    assert code == 1
    assert out == ""  # nothing for eval to export
    assert err.startswith("note: the local Prefect server is not running") and f"port {port}" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
