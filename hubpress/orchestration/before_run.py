"""What the CLI and the Python API do before they create a publish-dataset or publish-lora run:
the cheapest check (hubpress.shards.unchanged), and, when nothing changed, a
`hubpress.publish.unchanged` event on the Prefect server instead of a flow run.

A flow run costs more than an unchanged publish's work (Prefect's client, the run's states, its
task runs and the flush at exit), so an unchanged publish from a person or a script is recorded
as one event: it shows in the UI's Event feed, not among the flow runs. Served, scheduled and UI
runs still go through the flow, which asks the same check first.

Whenever the check cannot say "unchanged" for sure (no record from an earlier publish here, an
error on the way, no Prefect server to tell, the event refused), the flow runs as it always did:
it gives the same answer, or the error in its own words, and the UI shows a run.
"""

from __future__ import annotations

import logging
from typing import Any

from hubpress.flows.params import PublishDatasetParams, PublishLoraParams

log = logging.getLogger("hubpress.before_run")


def skip_if_unchanged(
    params: PublishDatasetParams | PublishLoraParams, api_url: str | None, entry: str
) -> dict[str, Any] | None:
    """The flow's own unchanged result when the publish is a no-op and the event reached the
    Prefect server at `api_url`; else None (the caller runs the flow). `entry`: cli or api."""
    from hubpress.orchestration.events import post_event, unchanged_event
    from hubpress.shards.unchanged import check_dataset, check_lora

    if api_url is None:  # Prefect's temporary server: nothing would keep the event
        return None
    try:
        found = check_dataset(params) if isinstance(params, PublishDatasetParams) else check_lora(params)
    except Exception as exc:  # noqa: BLE001 - the flow meets it again and says it in its own words
        log.debug("the check before the run gave way to the flow: %s", exc)
        return None
    if found is None:
        return None
    try:
        post_event(api_url, unchanged_event(found, entry))
    except Exception as exc:  # noqa: BLE001 - unrecorded, it would not be truthful: the flow records it
        log.debug("could not record %s's no-op as an event (%s): running the flow", found.target, exc)
        return None
    return found.result
