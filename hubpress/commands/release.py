"""`hubpress release OUTPUT_URI --repo ORG/NAME` and `hubpress training-finished OUTPUT_URI --repo ORG/NAME`.

`release` runs the release flow here and now. `training-finished` is what a trainer calls when it
is done: it only announces a `training.job.finished` event to the Prefect server, where the
release-training-run deployment (served by `hubpress serve` or a worker) picks it up. It never
blocks or fails the trainer: it gives up after a few seconds and always exits 0.
"""

from __future__ import annotations

import json
import shlex
import uuid
from datetime import UTC, datetime
from typing import Any

import typer

from hubpress.commands.common import emit_result, run_flow
from hubpress.commands.preflight import check_local_input, check_release
from hubpress.errors import SourceError, hide_userinfo
from hubpress.orchestration.events import EMIT_TIMEOUT_S, listens_for, post_event
from hubpress.targets.base import is_local_target, local_path
from hubpress.targets.hub_failures import short_reason

TRAINING_FINISHED_EVENT = "training.job.finished"


def absolute_local(uri: str, only_if_local_target: bool = False) -> str:
    """A local path as an absolute one (s3:// and Hub repo ids unchanged): the event is handled
    in another process, in another working directory."""
    if uri.startswith("s3://") or (only_if_local_target and not is_local_target(uri)):
        return uri
    if "://" in uri and not uri.startswith("file://"):
        return uri
    return str(local_path(uri).expanduser().resolve())  # a file:// URI percent-decoded


def training_finished_event(
    output_uri: str, repo_id: str, tag: str | None, base_model: str | None, select: str | None
) -> dict[str, Any]:
    """The event as Prefect's POST /api/events takes it (one element of the JSON list)."""
    payload = {"output_uri": output_uri, "repo_id": repo_id, "select": select or "latest"}
    if tag:
        payload["tag"] = tag
    if base_model:
        payload["base_model"] = base_model
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": TRAINING_FINISHED_EVENT,
        "resource": {
            "prefect.resource.id": f"hubpress.training-run.{output_uri}",
            "prefect.resource.name": output_uri,
        },
        "related": [],
        "payload": payload,
    }


def register(app: typer.Typer) -> None:
    @app.command("release")
    def release_command(
        output_uri: str = typer.Argument(
            ..., help="Training output: a local directory or s3://bucket/prefix."
        ),
        repo: str = typer.Option(..., "--repo", help="Hub model repo id (org/name) or a local directory."),
        select: str = typer.Option("latest", help="latest, step:N, or best:METRIC[:min|max]."),
        tag: str = typer.Option(None, help="Tag for the release (default: step-<N>)."),
        base_model: str = typer.Option(None, "--base-model", help="Base model named in the card."),
        public: bool = typer.Option(False, "--public", help="Create the repo public (default: private)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object, no progress output."),
    ) -> None:
        """Release a checkpoint of a finished training run: weights, config, samples, card and
        release.json in one commit, tagged. Running it again on the same output changes nothing."""
        from hubpress.flows.params import ReleaseTrainingRunParams

        params = ReleaseTrainingRunParams(
            output_uri=output_uri, repo_id=repo, select=select, tag=tag, base_model=base_model, public=public
        )
        check_release(params)

        def run():
            from hubpress.flows.release_training_run import release_training_run

            return release_training_run(params)

        result = run_flow(run, as_json)
        emit_result(result, as_json)
        if not as_json:
            commit = (result.get("released_commit") or "")[:12] or "none"
            typer.echo(
                f"  release: {result['checkpoint']} (step {result['step']}), commit {commit}, "
                f"tagged {result['tag']}"
            )
            if result.get("stage_reused"):
                typer.echo(
                    "  reused the files an earlier run of this release had staged (nothing copied again)"
                )

    @app.command("training-finished")
    def training_finished_command(
        output_uri: str = typer.Argument(
            ..., help="Training output: a local directory or s3://bucket/prefix."
        ),
        repo: str = typer.Option(..., "--repo", help="Hub model repo id (org/name) to release to."),
        tag: str = typer.Option(None, help="Tag for the release (default: step-<N>)."),
        base_model: str = typer.Option(None, "--base-model", help="Base model named in the card."),
        select: str = typer.Option(None, help="latest (default), step:N, or best:METRIC[:min|max]."),
        timeout: float = typer.Option(EMIT_TIMEOUT_S, help="Seconds to wait for the Prefect server."),
    ) -> None:
        """Tell Prefect a training run finished (event `training.job.finished`), so the
        release-training-run deployment releases it. Never fails the trainer: always exits 0.

        Local paths are sent as absolute paths (the release runs in the worker's directory, not
        the trainer's), and a local output that does not exist is not announced."""
        output_uri, repo = absolute_local(output_uri), absolute_local(repo, only_if_local_target=True)
        try:
            check_local_input(output_uri, "training output")
        except SourceError as exc:
            typer.secho(f"warning: {exc} Nothing was announced.", err=True, fg=typer.colors.YELLOW)
            raise typer.Exit(0)
        from pydantic import ValidationError

        from hubpress.commands.common import validation_lines
        from hubpress.flows.params import ReleaseTrainingRunParams

        try:  # what the deployment would refuse when its run starts, where nobody is watching
            ReleaseTrainingRunParams(
                output_uri=output_uri, repo_id=repo, tag=tag, base_model=base_model, select=select or "latest"
            )
        except ValidationError as exc:
            typer.secho(
                f"warning: {validation_lines(exc).rstrip('.')}. Nothing was announced: fix the option and run "
                "`hubpress training-finished` again.",
                err=True,
                fg=typer.colors.YELLOW,
            )
            raise typer.Exit(0)
        try:
            _announce(output_uri, repo, tag, base_model, select, timeout)
        except Exception as exc:  # the trainer's job is done; a lost announcement must not undo it
            # one line, and no password the API URL carried (httpx's message names the URL)
            typer.secho(
                f"warning: could not announce {TRAINING_FINISHED_EVENT} ({short_reason(exc)}); "
                f"release it by hand with: {_release_command(output_uri, repo)}",
                err=True,
                fg=typer.colors.YELLOW,
            )
        raise typer.Exit(0)


def _release_command(output_uri: str, repo: str) -> str:
    """The command a person pastes into a shell: a path with spaces stays one argument."""
    return shlex.join(["hubpress", "release", output_uri, "--repo", repo])


def _announce(
    output_uri: str, repo: str, tag: str | None, base_model: str | None, select: str | None, timeout: float
) -> None:
    from hubpress.orchestration.server import api_url_for_commands

    event = training_finished_event(output_uri, repo, tag, base_model, select)
    api_url = api_url_for_commands(start=False)  # a new server would have nobody serving the release
    if api_url is None:
        typer.secho(
            f"warning: no Prefect server configured (PREFECT_API_URL, or `hubpress server start`), so "
            f"nothing listens for {TRAINING_FINISHED_EVENT}; release it by hand with: "
            f"{_release_command(output_uri, repo)}",
            err=True,
            fg=typer.colors.YELLOW,
        )
        return
    if listens_for(api_url, TRAINING_FINISHED_EVENT, timeout=timeout) is False:
        # "Announced" here was a release that never happens: nothing on the server would start one.
        typer.secho(
            f"warning: nothing on {hide_userinfo(api_url.removesuffix('/api'))} listens for "
            f"{TRAINING_FINISHED_EVENT} (run `hubpress serve` there, or `prefect deploy --all` for a work "
            f"pool), so nothing was announced; release it by hand with: {_release_command(output_uri, repo)}",
            err=True,
            fg=typer.colors.YELLOW,
        )
        return
    post_event(api_url, event, timeout=timeout)
    typer.secho(
        f"Announced {TRAINING_FINISHED_EVENT} for {output_uri} -> {repo} to {api_url.removesuffix('/api')}",
        err=True,
    )
    typer.echo(json.dumps({"event": event["event"], "id": event["id"], "payload": event["payload"]}))
