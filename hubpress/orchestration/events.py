"""Prefect events hubpress sends itself, over plain HTTP: POST /api/events takes a JSON list.

Used where a command must not pay for Prefect's client (its import, its events worker and the
flush at exit): `hubpress training-finished`, and an unchanged publish from the CLI or the
Python API, which is recorded as a `hubpress.publish.unchanged` event instead of a flow run.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hubpress.errors import hide_userinfo
from hubpress.targets.base import is_local_target, local_path

if TYPE_CHECKING:
    from hubpress.shards.unchanged import Unchanged

log = logging.getLogger("hubpress.events")

EMIT_TIMEOUT_S = 5.0
UNCHANGED_EVENT = "hubpress.publish.unchanged"


def post_event(api_url: str, event: dict[str, Any], timeout: float = EMIT_TIMEOUT_S) -> None:
    """POST one event to a Prefect server. Raises httpx2 errors; the caller decides what they mean."""
    import httpx2 as httpx  # huggingface_hub's client, loaded already on the no-op path

    headers = {}
    if os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['PREFECT_API_KEY']}"
    response = httpx.post(f"{api_url.rstrip('/')}/events", json=[event], headers=headers, timeout=timeout)
    response.raise_for_status()


def target_resource_id(repo_type: str, target: str) -> str:
    """The resource an event is about: `huggingface.dataset.org/name` or `huggingface.model.org/name`
    (as the release flow names its repo), or `hubpress.local.<absolute path>` for a local target."""
    if is_local_target(target):
        return f"hubpress.local.{local_path(target).resolve()}"
    return f"huggingface.{repo_type}.{target}"


def unchanged_event(found: Unchanged, entry: str) -> dict[str, Any]:
    """The `hubpress.publish.unchanged` event (one element of POST /api/events' list): the target
    as its resource, the source as a related one, and what was compared in the payload."""
    source = found.source if "://" in found.source else os.path.abspath(found.source)
    source = hide_userinfo(source)
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": UNCHANGED_EVENT,
        "resource": {
            "prefect.resource.id": target_resource_id(found.repo_type, found.target),
            "prefect.resource.name": found.target,
        },
        "related": [
            {
                "prefect.resource.id": f"hubpress.source.{source}",
                "prefect.resource.role": "source",
                "prefect.resource.name": source,
            }
        ],
        "payload": {
            "flow": found.flow,
            "entry": entry,
            "source": source,
            "target": found.target,
            "revision": found.revision,
            "head": found.head,
            "summary": "unchanged: the source listing and the target's head are as last published; "
            "nothing was read or sent, and no flow run was created",
        },
    }


# Automations asked for a page at a time (Prefect's default and largest page is 200), and at most
# this many pages: a server with more does not say, and the event is announced anyway.
AUTOMATIONS_PAGE = 200
AUTOMATIONS_PAGES = 50


def listens_for(api_url: str, event_name: str, timeout: float = EMIT_TIMEOUT_S) -> bool | None:
    """Whether an enabled automation on the server expects `event_name` (a deployment's event
    trigger is one: `hubpress serve`'s, a work pool's from `prefect deploy --all`, or the user's
    own). False: the event would start nothing, now or later (a trigger made afterwards does not
    see it). None: the server's answer does not say (the caller announces anyway). A server that
    cannot be reached raises httpx2's error, as post_event does: the announcement's one bound.
    Every page of automations is read: the server answers 200 at a time, and the one listening
    may be past the first page."""
    import httpx2 as httpx  # huggingface_hub's client, loaded already on the no-op path

    headers = {}
    if os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['PREFECT_API_KEY']}"
    try:
        for page in range(AUTOMATIONS_PAGES):
            response = httpx.post(
                f"{api_url.rstrip('/')}/automations/filter",
                json={"limit": AUTOMATIONS_PAGE, "offset": page * AUTOMATIONS_PAGE},
                headers=headers,
                timeout=timeout,
            )
            response.raise_for_status()
            automations = response.json()
            if any(a.get("enabled") and _expects(a.get("trigger"), event_name) for a in automations):
                return True
            if len(automations) < AUTOMATIONS_PAGE:
                return False
        return None
    except (httpx.HTTPStatusError, ValueError, AttributeError, TypeError):
        return None


def _expects(trigger: Any, event_name: str) -> bool:
    """An event trigger, or a compound or sequence trigger holding one, that matches `event_name`
    as the Prefect server matches it: an empty `expect` expects every event, and each pattern is
    a glob (`*` anywhere), negated by a leading `!`."""
    if not isinstance(trigger, dict):
        return False
    if trigger.get("type") == "event" and not trigger.get("expect"):
        return True
    for pattern in trigger.get("expect") or ():
        if fnmatch.fnmatchcase(event_name, pattern.removeprefix("!")) != pattern.startswith("!"):
            return True
    return any(_expects(inner, event_name) for inner in trigger.get("triggers") or ())
