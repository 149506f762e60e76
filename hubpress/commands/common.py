"""What every command shares: running a flow quietly, and printing a result for a person or as JSON."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import typer


def run_flow(run: Callable[[], Any], as_json: bool) -> Any:
    """Run a flow. With --json, Prefect's own console logging is silenced so stdout holds one object."""
    from huggingface_hub.utils import disable_progress_bars

    from hubpress.orchestration import artifacts

    if as_json:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        logging.getLogger("prefect").setLevel(logging.WARNING)
        disable_progress_bars()  # huggingface_hub's upload bars (files, bytes, rate, ETA)
    else:
        artifacts.show_terminal_progress()  # shard building
    from hubpress.orchestration.server import api_url_for_commands, prefect_api

    # PREFECT_API_URL when set, else the server `hubpress server start` left running.
    where = api_url_for_commands()
    if not as_json:
        typer.secho(
            f"Prefect: runs are recorded at {where.removesuffix('/api')}"
            if where
            else "Prefect: no server configured; using a temporary one "
            "(start one with `hubpress server start` to see runs in the UI and skip this start-up cost)",
            err=True,
            fg=typer.colors.BRIGHT_BLACK,
        )
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # A command waits ~1 s at the end of a run for the heartbeat thread. The person at the terminal
    # sees a crash for themselves, so command runs skip heartbeats; deployments keep them.
    # (Refused parameter values are pydantic ValidationErrors: hubpress.commands.cli prints them, exit 2.)
    with prefect_api(where), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return run()


def emit_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True, default=str))
        return
    if result.get("dry_run"):
        typer.echo(f"Dry run for {result['target']}: nothing uploaded.")
    elif result.get("commit") is None:
        typer.echo(f"{result['target']} is up to date: nothing uploaded, no commit made.")
    else:
        typer.echo(
            f"Published to {result['target']} at {result['commit'][:12]}: "
            f"{len(result['uploaded_files'])} file(s), {result['uploaded_bytes']:,} bytes."
        )
        if result.get("commit_url"):
            typer.echo(f"  {result['commit_url']}")
    plan = result.get("plan") or {}
    for kind in ("added", "changed", "deleted", "unchanged"):
        paths = plan.get(kind) or []
        if paths:
            shown = ", ".join(paths[:5]) + (f", ... (+{len(paths) - 5})" if len(paths) > 5 else "")
            typer.echo(f"  {kind}: {len(paths)}  {shown}")
    if "samples" in result:
        for split, count in sorted(result["samples"].items()):
            skipped = (result.get("skipped") or {}).get(split, 0)
            typer.echo(
                f"  {split}: {count} samples"
                + (f", {skipped} skipped (see the intake report)" if skipped else "")
            )
