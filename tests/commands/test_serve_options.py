"""`hubpress serve` refuses option values it cannot serve with, before it registers anything."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_below_one_is_refused_before_serving(limit):
    # --limit -1 was anyio's traceback after the deployments were registered; --limit 0 served
    # forever and never started a run.
    code, out, err = run_cli("serve", "--limit", limit)
    assert code == 2
    assert "--limit" in err and "Traceback" not in err
    assert "serving" not in out + err and "Prefect UI" not in out + err
