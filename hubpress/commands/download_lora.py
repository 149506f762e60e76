"""`hubpress download-lora REPO`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("download-lora")
    def download_lora_command(
        repo: str = typer.Argument(..., help="Hub model repo id (org/name) or a local target directory."),
        filename: str = typer.Option("pytorch_lora_weights.safetensors", help="File to download."),
        revision: str = typer.Option(None, help="Branch, tag or commit."),
    ) -> None:
        """Download LoRA weights and print the local path."""
        from hubpress.api import download_lora

        typer.echo(download_lora(repo, filename=filename, revision=revision))
