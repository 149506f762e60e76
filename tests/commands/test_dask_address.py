"""`--dask-address` is checked before Prefect starts: an address that names no scheduler is exit 2,
one line; a scheduler that does not answer is exit 1, one line, in seconds. Before, the first died
in a ValueError traceback inside the flow run, the second after distributed's 30 s connect timeout
with an OSError traceback."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import run_cli


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address", ["notaurl", "tcp://", "http://127.0.0.1:8786", "tcp://host:port"])
def test_an_address_that_names_no_scheduler_is_refused(bed, address):
    code, out, err = run_cli(
        "publish-dataset", "src", "./out/ds", "--task-runner", "dask", "--dask-address", address
    )
    assert code == 2, err
    assert "Traceback" not in err
    assert "--dask-address" in err and "tcp://host:8786" in err
    assert not (bed / "out" / "ds").exists()


def test_a_scheduler_that_does_not_answer_is_one_line(bed):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    code, out, err = run_cli(
        "publish-dataset", "src", "./out/ds", "--task-runner", "dask", "--dask-address", address, "--json"
    )
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: Cannot reach the Dask scheduler at {address}"), (
        err
    )
    assert "--dask-address" in lines[0]
    assert out.strip().startswith("{") and "Cannot reach the Dask scheduler" in out
    assert not (bed / "out" / "ds").exists()


def test_a_scheduler_at_an_ipv6_address_is_reached():
    # distributed writes an IPv6 scheduler as tcp://[::1]:8786; the check put the host back without
    # its brackets (tcp://::1:8786) and died in a ValueError traceback on a scheduler that answers.
    from hubpress.commands.preflight import check_dask_reachable

    try:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with listener:
        listener.listen()
        check_dask_reachable(f"tcp://[::1]:{listener.getsockname()[1]}")
