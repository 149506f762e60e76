"""`hubpress publish-lora SRC TARGET`."""

from __future__ import annotations

import typer

from hubpress.commands.common import emit_result, run_flow
from hubpress.commands.preflight import fail_fast_without_token


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
    def publish_lora_command(
        src: str = typer.Argument(..., help="A .safetensors file, or a directory holding one."),
        target: str = typer.Argument(..., help="Hub model repo id (org/name) or a local directory."),
        remote_name: str = typer.Option(
            None, help="File name in the repo (default pytorch_lora_weights.safetensors)."
        ),
        extra: list[str] = typer.Option(None, "--extra", help="LOCAL=REMOTE, repeatable."),
        public: bool = typer.Option(False, "--public", help="Create the repo public (default: private)."),
        revision: str = typer.Option("main", help="Branch."),
        tag: str = typer.Option(None, help="Tag the new commit."),
        base_model: str = typer.Option(None, help="Base model for the card."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Publish LoRA weights: validated, SHA256-skipped, one commit, a model card."""
        from flows.params import PublishLoraParams

        params = PublishLoraParams(
            src_path=src,
            target=target,
            remote_name=remote_name,
            extra_files=_extras(extra),
            public=public,
            revision=revision,
            tag=tag,
            base_model=base_model,
            dry_run=dry_run,
        )

        fail_fast_without_token(target, dry_run)

        def run():
            from flows.publish_lora import publish_lora

            return publish_lora(params)

        emit_result(run_flow(run, as_json), as_json)
