"""A scheduled deployment switched on before its parameters were filled in says so, in one line.

The docs say "fill in the parameters, then activate the schedule". A stranger who only flips the
schedule on got, from refresh-dataset/nightly (which had no parameters), a run CRASHED every night
with `ParameterBindError: missing a required argument: 'params'` and a traceback in the serve log,
and from publish-dataset/scheduled (example values) an S3 or Hub error about `YOUR-BUCKET`. Each
scheduled deployment now carries example parameters its form shows, and a run that still has them
fails at its start, before any listing, download or Hub call, with what to do.
"""

from __future__ import annotations

import pytest

from hubpress.deployments.serve import REFRESH_DATASET, SCHEDULED_PUBLISH, build_deployments
from hubpress.flows.publish_dataset import publish_dataset
from hubpress.flows.refresh_dataset import refresh_dataset

pytestmark = pytest.mark.usefixtures("prefect_harness")

FLOWS = {"refresh-dataset": refresh_dataset, "publish-dataset": publish_dataset}


@pytest.mark.parametrize("name", [REFRESH_DATASET, SCHEDULED_PUBLISH])
def test_a_scheduled_run_with_the_example_parameters_says_to_fill_them_in(name, hub, write_token, s3):
    deployment = {f"{d.flow_name}/{d.name}": d for d in build_deployments()}[name]
    (schedule,) = deployment.schedules
    assert schedule.active is False
    # What the scheduler starts a run with: the deployment's saved parameters, as a runner passes them.
    assert deployment.parameters.get("params"), f"{name}'s schedule would start runs without parameters"
    target = deployment.parameters["params"]["target"]
    state = FLOWS[deployment.flow_name](params=deployment.parameters["params"], return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert str(error) == (
        f"this run has the deployment's example parameters (target {target}): fill in the deployment's "
        "parameters (Prefect UI: Deployments, the deployment, Edit; prefect.yaml for a work pool), then "
        "run it again"
    )
    assert sum(hub.stats.requests.values()) == 0  # refused before the Hub was asked anything


def test_only_the_placeholder_organisation_is_refused():
    from hubpress.deployments.serve import REFRESH_EXAMPLE, SCHEDULED_PUBLISH_EXAMPLE
    from hubpress.errors import ConfigError
    from hubpress.flows.params import EXAMPLE_ORG, refuse_example_parameters

    for example in (REFRESH_EXAMPLE, SCHEDULED_PUBLISH_EXAMPLE):
        assert example["target"].split("/")[0] == EXAMPLE_ORG  # the examples stay placeholders
        with pytest.raises(ConfigError):
            refuse_example_parameters(example["target"])
    for own in ("my-org/edits", "your-org-labs/edits", "./YOUR-ORG/edits"):  # a user's own values
        refuse_example_parameters(own)
