"""`hubpress download-lora REPO`."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    @app.command("download-lora")
    def download_lora_command(
        repo: str = typer.Argument(..., help="Hub model repo id (org/name) or a local target directory."),
        filename: str = typer.Option("pytorch_lora_weights.safetensors", help="File to download."),
        revision: str = typer.Option(None, help="Branch, tag or commit."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Download LoRA weights and print the local path."""
        import os

        from huggingface_hub import constants

        from hubpress.api import download_lora
        from hubpress.commands.preflight import check_hub_reachable
        from hubpress.targets.base import is_local_target

        if not is_local_target(repo) and not constants.HF_HUB_OFFLINE:  # offline: the cached copy
            check_hub_reachable()
        path = download_lora(repo, filename=filename, revision=revision)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "repo": repo,
                        "filename": filename,
                        "revision": revision,
                        "path": path,
                        "size": os.path.getsize(path),
                    },
                    sort_keys=True,
                )
            )
        else:
            typer.echo(path)
