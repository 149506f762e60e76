"""`hubpress publish-lora SRC_PATH TARGET`: its options are PublishLoraParams' fields
(hubpress.commands.options), as in the publish-lora deployment's form."""

from __future__ import annotations

import typer

from hubpress.commands.common import emit_result, run_flow, unchanged
from hubpress.commands.options import model_command
from hubpress.commands.preflight import check_publish_lora
from hubpress.flows.params import PublishLoraParams


def _extras(values: list[str] | None) -> dict[str, str]:
    extras: dict[str, str] = {}
    for value in values or []:
        local, sep, remote = value.partition("=")
        if not sep or not local or not remote:
            # A usage error (exit 2), like any other unusable argument.
            raise typer.BadParameter(
                f"{value!r}: expected LOCAL=REMOTE, e.g. --extra ./cfg.yaml=train_config.yaml",
                param_hint="--extra",
            )
        extras[local] = remote
    return extras


def register(app: typer.Typer) -> None:
    @app.command("publish-lora")
    @model_command(
        PublishLoraParams,
        arguments={"src_path": "SRC_PATH", "target": "TARGET"},
        exclude=("extra_files",),
        build=False,
    )
    def publish_lora_command(
        values: dict,
        extra: list[str] = typer.Option(
            None, "--extra", help="An extra file as LOCAL=REMOTE (the form's extra_files), repeatable."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Publish LoRA weights: validated, SHA256-skipped, one commit, a model card."""
        params = PublishLoraParams(**values, extra_files=_extras(extra))
        check_publish_lora(params)

        def run():
            from hubpress.flows.publish_lora import publish_lora

            return publish_lora(params)

        emit_result(run_flow(run, as_json, before=unchanged(params)), as_json)
