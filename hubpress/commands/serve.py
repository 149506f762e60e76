"""`hubpress serve`: every deployment from one process, on a Prefect server (a local one if none is set)."""

from __future__ import annotations

import os

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        # At least 1: 0 would serve forever and run nothing, a negative number was Prefect's traceback.
        limit: int = typer.Option(None, min=1, help="Most flow runs at once (default: no limit)."),
        pause_on_shutdown: bool = typer.Option(
            False,
            "--pause-on-shutdown",
            help="Pause the deployments when this process stops (events and schedules then create no "
            "runs until the next `hubpress serve`). By default runs created meanwhile wait for it.",
        ),
        poll: float = typer.Option(
            None,
            "--poll",
            min=0.1,
            help="Seconds between asks for new runs (default 1; PREFECT_RUNNER_POLL_FREQUENCY when set).",
        ),
    ) -> None:
        """Serve publish-dataset, publish-lora, release-training-run (on `training.job.finished`
        events) and refresh-dataset (inactive nightly schedule) until Ctrl-C.

        Uses PREFECT_API_URL when set, else the server of `hubpress server start`, else starts that
        local server (it keeps running after this command; stop it with `hubpress server stop`)."""
        from hubpress.orchestration.server import api_url_for_commands, start_server

        url = api_url_for_commands(announce=lambda line: typer.secho(line, err=True))
        if url is None:  # HUBPRESS_PREFECT_SERVER=temporary: serving still needs a lasting server
            typer.secho("No Prefect server configured: starting a local one (5-15 s)...", err=True)
            server, _ = start_server()
            os.environ["PREFECT_API_URL"] = url = server.url
        typer.secho(f"Prefect UI: {url.removesuffix('/api')}", fg=typer.colors.GREEN, err=True)

        from hubpress.deployments.serve import serve_all

        serve_all(limit=limit, pause_on_shutdown=pause_on_shutdown, poll_seconds=poll)
