"""A PREFECT_API_URL where nothing listens (a server stopped, a tunnel closed, a typo in the port)
is one line before any work, naming the variable and what to do: an outsider's publish, `serve` and
the Python API ended in Prefect's 130-line traceback ("Failed to reach API") after the intake."""

from __future__ import annotations

import socket

import pytest

from hubpress.errors import ConfigError
from hubpress.testdata.synth import write_dataset
from tests.conftest import run_cli


def _dead_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


@pytest.fixture
def dead_api(monkeypatch) -> str:
    url = _dead_url()
    monkeypatch.setenv("PREFECT_API_URL", url)
    return url


@pytest.mark.parametrize("command", ["publish-dataset", "serve"])
def test_a_dead_prefect_api_is_one_line_before_any_work(tmp_path, dead_api, command):
    write_dataset(tmp_path / "src", samples=2)
    argv = ["serve"] if command == "serve" else [command, str(tmp_path / "src"), str(tmp_path / "out")]
    code, out, err = run_cli(*argv)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: Nothing answers at PREFECT_API_URL {dead_api.removesuffix('/api')}")
    assert "unset PREFECT_API_URL" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_dead_prefect_api_is_one_error_from_the_python_api(tmp_path, dead_api):
    from hubpress.api import upload_editing_dataset

    write_dataset(tmp_path / "src", samples=2)
    with pytest.raises(ConfigError, match="Nothing answers at PREFECT_API_URL"):
        upload_editing_dataset(str(tmp_path / "src"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_uis_address_given_as_the_api_is_one_line_saying_add_api(tmp_path, prefect_harness, monkeypatch):
    """`http://127.0.0.1:4200`, copied from the browser, is the UI's address: the server answers,
    but not as its API, and Prefect failed there after the intake with the same traceback."""
    from tests.conftest import harness_api

    ui = harness_api()["PREFECT_API_URL"].removesuffix("/api")
    monkeypatch.setenv("PREFECT_API_URL", ui)
    write_dataset(tmp_path / "src", samples=2)
    code, out, err = run_cli("publish-dataset", str(tmp_path / "src"), str(tmp_path / "out"))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: PREFECT_API_URL {ui} is a server but not its Prefect API")
    assert f"as {ui}/api" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def behind_a_proxy(prefect_harness, monkeypatch):
    """The Prefect API at a name only the proxy resolves (HTTP_PROXY), as on a company network."""
    from tests.conftest import harness_api
    from tests.faultproxy import FaultProxy

    proxy = FaultProxy(harness_api()["PREFECT_API_URL"]).start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    yield proxy
    proxy.stop()


def test_an_api_reached_through_a_proxy_is_not_called_dead(behind_a_proxy):
    """Prefect's client goes through HTTP(S)_PROXY; the check connected to the API's host directly,
    so an API only the proxy reaches was "Nothing answers" and every command stopped."""
    from hubpress.orchestration.configured_api import check_answers

    check_answers("http://prefect-api.invalid:4200/api")


def test_a_dead_proxy_is_named_in_the_one_line(behind_a_proxy, monkeypatch):
    dead = _dead_url().removesuffix("/api")
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("http_proxy", dead)
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect-api.invalid:4200/api")
    code, out, err = run_cli("serve")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith(
        f"error: Nothing answers at PREFECT_API_URL http://prefect-api.invalid:4200, through the proxy {dead},"
    )
