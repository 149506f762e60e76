"""An S3 store that keeps answering 5xx (an outage past botocore's retries) is said in one line that
names the object or prefix the call was for, what went wrong and what to do: before, the line
named only "S3" and the operation ("Could not talk to S3: its answer cannot be used (ClientError:
An error occurred (ServiceUnavailable) when calling the PutObject operation ...)"), so a user with
a source bucket and a staging bucket could not tell which one was down. The error stays the
ClientError it was, so a task's retries still take it (hubpress.targets.retries).

moto sits behind tests/faultproxy.py, which answers every matching request with a fault."""

from __future__ import annotations

import pytest

from hubpress.settings import Settings
from hubpress.storage.files import ListedFile, open_storage
from hubpress.targets.hub_failures import outbound_failure
from hubpress.targets.retries import is_transient_error
from tests.faultproxy import FaultProxy


@pytest.fixture
def down(s3, monkeypatch):
    endpoint, bucket = s3
    fp = FaultProxy(endpoint).start()
    monkeypatch.setenv("HUBPRESS_S3_ENDPOINT_URL", fp.url)
    yield fp, bucket
    fp.stop()


def _line(call) -> tuple[BaseException, str]:
    with pytest.raises(Exception) as info:
        call()
    failure = outbound_failure(info.value)
    assert failure is not None, repr(info.value)
    return info.value, str(failure)


@pytest.mark.parametrize(
    ("pattern", "kind", "call", "where"),
    [
        (r"^PUT ", "503", lambda s: s.write_bytes("runs/x.bin", b"x"), "stage/runs/x.bin"),
        (r"^GET ", "500", lambda s: s.read_bytes("runs/y.bin"), "stage/runs/y.bin"),
        (r"^GET ", "503", lambda s: s.read_listed(ListedFile("runs/z.bin", 1, "e")), "stage/runs/z.bin"),
        (r"^GET ", "slowdown", lambda s: list(s.list("runs")), "stage/runs/"),
    ],
    ids=["write", "read", "listed-read", "list"],
)
def test_a_persistent_5xx_names_the_bucket_and_object_and_what_to_do(down, pattern, kind, call, where):
    fp, bucket = down
    storage = open_storage(f"s3://{bucket}/stage", Settings(s3_max_attempts=1))
    fp.arm(pattern, kind, count=20)

    raised, line = _line(lambda: call(storage))

    assert f"s3://{bucket}/{where}" in line, line
    assert "\n" not in line
    code = {"503": "ServiceUnavailable", "500": "InternalError", "slowdown": "SlowDown"}[kind]
    assert code in line and "HTTP 5" in line, line
    assert "run again" in line and "HUBPRESS_S3_MAX_ATTEMPTS" in line, line
    # Still what it was: a task's retries take a 5xx as transient.
    assert is_transient_error(raised)
