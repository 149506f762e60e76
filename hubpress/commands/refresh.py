"""`hubpress refresh CONFIG TARGET`: refresh a published dataset from upstream Hub datasets."""

from __future__ import annotations

import typer

from hubpress.commands.common import emit_result, run_flow


def register(app: typer.Typer) -> None:
    @app.command("refresh")
    def refresh_command(
        config: str = typer.Argument(
            ..., help="SimpleTuner dataloader JSON (one backend object or a list), type huggingface or local."
        ),
        target: str = typer.Argument(
            ..., help="Hub dataset repo id (org/name) or a local directory (./out)."
        ),
        seed: int = typer.Option(0, help="Seed for the order of a mix of several backends."),
        stopping: str = typer.Option(
            "all_rows",
            help="Mixing rule: all_rows (every kept row once; default), first_exhausted (leaves rows out, "
            "counted) or all_exhausted (repeats small backends, counted).",
        ),
        staging: str = typer.Option(None, help="Staging: a local directory or s3://bucket/prefix."),
        max_shard_size: str = typer.Option("500MB", help="Largest parquet shard, e.g. 500MB or 1GB."),
        public: bool = typer.Option(False, "--public", help="Create the repo public (default: private)."),
        revision: str = typer.Option("main", help="Branch to commit to (created when missing)."),
        tag: str = typer.Option(None, help="Tag the new commit."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop; nothing is sent."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object, no progress output."),
    ) -> None:
        """Re-publish a dataset from its upstream Hub datasets; does nothing when nothing changed."""
        from flows.params import RefreshParams

        params = RefreshParams(
            config=config,
            target=target,
            seed=seed,
            stopping=stopping,
            staging=staging,
            max_shard_size=max_shard_size,
            public=public,
            revision=revision,
            tag=tag,
            dry_run=dry_run,
        )

        def run():
            from flows.refresh_dataset import refresh_dataset

            return refresh_dataset(params)

        result = run_flow(run, as_json)
        if result.get("nothing_changed") and not as_json:
            typer.echo(f"{result['target']}: {result['message']}.")
            return
        emit_result(result, as_json)
        if not as_json:
            for backend_id, reused in (result.get("metadata_cache_reused") or {}).items():
                if reused is not None:
                    typer.echo(f"  {backend_id}: metadata cache {'reused' if reused else 'built'}")
