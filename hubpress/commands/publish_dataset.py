"""`hubpress publish-dataset SOURCE TARGET`: its options are PublishDatasetParams' fields
(hubpress.commands.options), the same the publish-dataset deployment's form shows."""

from __future__ import annotations

import typer

from hubpress.commands.common import emit_result, run_flow, unchanged
from hubpress.commands.options import model_command
from hubpress.commands.preflight import check_dask_reachable, check_publish_dataset
from hubpress.errors import ConfigError
from hubpress.flows.params import PublishDatasetParams


def register(app: typer.Typer) -> None:
    @app.command("publish-dataset")
    @model_command(PublishDatasetParams, arguments={"source": "SOURCE", "target": "TARGET"})
    def publish_dataset_command(
        params: PublishDatasetParams,
        task_runner: str = typer.Option("threads", help="threads (default) or dask."),
        dask_address: str = typer.Option(
            None,
            help="An existing Dask scheduler (tcp://host:8786); without it, dask starts a local cluster.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object, no progress output."),
    ) -> None:
        """Publish an image-editing dataset as sharded parquet: plan, one commit, card, manifest."""
        from hubpress.orchestration.runners import TaskRunnerChoice

        try:
            choice = TaskRunnerChoice(kind=task_runner, dask_address=dask_address)
        except ConfigError as exc:  # an unusable argument: exit 2 like the others
            raise typer.BadParameter(str(exc), param_hint="--task-runner") from None
        check_publish_dataset(params)
        if choice.dask_address:
            check_dask_reachable(choice.dask_address)

        def run():
            from hubpress.flows.publish_dataset import publish_dataset
            from hubpress.orchestration.runners import with_task_runner

            return with_task_runner(publish_dataset, choice)(params)

        emit_result(run_flow(run, as_json, before=unchanged(params)), as_json, source=params.source)
