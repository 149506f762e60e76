"""Which exceptions become one line (hubpress.targets.hub_failures): those a remote's answer made a
client raise, never a bug in hubpress's own code."""

from __future__ import annotations

import httpx2
import pytest

from hubpress.targets.hub_failures import HubAnswerUnusable, RemoteUnreachable, outbound_failure


def _raised(fn):
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def test_an_answer_a_client_cannot_parse_is_one_line():
    response = httpx2.Response(200, content=b"<html>", request=httpx2.Request("GET", "http://hub.test/api/x"))
    failure = outbound_failure(_raised(response.json), "read", "model repo a/b")
    assert isinstance(failure, HubAnswerUnusable)
    assert str(failure).startswith(
        "Could not read model repo a/b: its answer cannot be used (JSONDecodeError"
    )


def test_a_refused_connection_names_the_url_without_its_secrets():
    def connect():
        with httpx2.Client() as client:
            client.get("http://user:secret@127.0.0.1:9/api/whoami?token=x")

    failure = outbound_failure(_raised(connect))
    assert isinstance(failure, RemoteUnreachable)
    assert "127.0.0.1:9/api/whoami" in str(failure)
    assert "secret" not in str(failure) and "token=x" not in str(failure)


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("id"), TypeError("bad")])
def test_hubpress_own_errors_keep_their_traceback(error):
    def buggy():
        raise error

    assert outbound_failure(_raised(buggy)) is None
