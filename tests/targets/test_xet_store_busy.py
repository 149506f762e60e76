"""Two uploads on one machine through a local Xet CAS: hf_xet lets one process at a time open the
store's dedup database, and says "Database already open. Cannot acquire lock" to the other.
hubpress waits for the store (bounded) rather than failing the publish; other errors pass."""

from __future__ import annotations

import pytest

from hubpress.errors import PublishError
from hubpress.targets.hub_xet import wait_while_store_busy

BUSY = "Internal error: Error opening redb database: Database already open. Cannot acquire lock."


def test_a_held_store_is_waited_for_and_then_used(caplog):
    calls = []

    def open_commit():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(BUSY)
        return "commit"

    assert wait_while_store_busy(open_commit) == "commit"
    assert len(calls) == 3
    assert [r.message for r in caplog.records if "holds hf_xet's local store" in r.message] != []


def test_a_store_held_past_the_bound_is_one_error_that_says_what_to_do():
    def open_commit():
        raise RuntimeError(BUSY)

    with pytest.raises(PublishError, match="held by another upload on this machine.*Run again"):
        wait_while_store_busy(open_commit, max_seconds=0.5)


def test_other_failures_are_not_waited_for():
    calls = []

    def open_commit():
        calls.append(1)
        raise RuntimeError("Internal error: something else")

    with pytest.raises(RuntimeError, match="something else"):
        wait_while_store_busy(open_commit)
    assert len(calls) == 1
