"""`hubpress publish-dataset SOURCE TARGET`."""

from __future__ import annotations

import typer

from hubpress.commands.common import emit_result, run_flow
from hubpress.commands.preflight import fail_fast_without_token
from hubpress.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("publish-dataset")
    def publish_dataset_command(
        source: str = typer.Argument(..., help="Dataset root: a local directory or s3://bucket/prefix."),
        target: str = typer.Argument(
            ..., help="Hub dataset repo id (org/name) or a local directory (./out)."
        ),
        layout: str = typer.Option("auto", help="auto, folder or csv."),
        on_error: str = typer.Option("skip", help="skip: leave bad samples out and report them; fail: stop."),
        staging: str = typer.Option(None, help="Staging: a local directory or s3://bucket/prefix."),
        max_shard_size: str = typer.Option("500MB", help="Largest parquet shard, e.g. 500MB or 1GB."),
        public: bool = typer.Option(False, "--public", help="Create the repo public (default: private)."),
        revision: str = typer.Option("main", help="Branch to commit to (created when missing)."),
        tag: str = typer.Option(None, help="Tag the new commit."),
        create_pr: bool = typer.Option(
            False, "--create-pr", help="Open a pull request instead of committing."
        ),
        allow_missing_target: bool = typer.Option(
            False, "--allow-missing-target", help="Train samples may lack a target."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
        fan_out: str = typer.Option("none", help="none, or splits: build each split in its own subflow run."),
        task_runner: str = typer.Option("threads", help="threads (default) or dask."),
        dask_address: str = typer.Option(
            None,
            help="An existing Dask scheduler (tcp://host:8786); without it, dask starts a local cluster.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object, no progress output."),
    ) -> None:
        """Publish an image-editing dataset as sharded parquet: plan, one commit, card, manifest."""
        from flows.params import PublishDatasetParams

        params = PublishDatasetParams(
            source=source,
            target=target,
            layout=layout,
            on_error=on_error,
            staging=staging,
            max_shard_size=max_shard_size,
            public=public,
            revision=revision,
            tag=tag,
            create_pr=create_pr,
            allow_missing_target=allow_missing_target,
            dry_run=dry_run,
            fan_out=fan_out,
        )

        fail_fast_without_token(target, dry_run)

        from hubpress.orchestration.runners import TaskRunnerChoice

        try:
            choice = TaskRunnerChoice(kind=task_runner, dask_address=dask_address)
        except ConfigError as exc:  # an unusable argument: exit 2 like the others
            raise typer.BadParameter(str(exc), param_hint="--task-runner") from None

        def run():
            from flows.publish_dataset import publish_dataset
            from hubpress.orchestration.runners import with_task_runner

            return with_task_runner(publish_dataset, choice)(params)

        emit_result(run_flow(run, as_json), as_json)
