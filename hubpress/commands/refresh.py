"""`hubpress refresh CONFIG TARGET`: refresh a published dataset from upstream Hub datasets. Its
options are RefreshParams' fields (hubpress.commands.options), as in the refresh deployment's form."""

from __future__ import annotations

import typer

from hubpress.commands.common import emit_result, run_flow
from hubpress.commands.options import model_command
from hubpress.commands.preflight import check_refresh
from hubpress.flows.params import RefreshParams


def register(app: typer.Typer) -> None:
    @app.command("refresh")
    @model_command(RefreshParams, arguments={"config": "CONFIG", "target": "TARGET"})
    def refresh_command(
        params: RefreshParams,
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object, no progress output."),
    ) -> None:
        """Re-publish a dataset from its upstream Hub datasets; does nothing when nothing changed."""
        check_refresh(params)

        def run():
            from hubpress.flows.refresh_dataset import refresh_dataset

            return refresh_dataset(params)

        result = run_flow(run, as_json)
        if result.get("nothing_changed") and not as_json:
            typer.echo(f"{result['target']}: {result['message']}.")
            if tag := result.get("tag"):  # --tag tags the head left in place: say it was done
                done = ", made on" if result.get("tag_created") else " was already on"
                typer.echo(f"  tag: {tag}{done} the unchanged head")
            return
        emit_result(result, as_json, skipped_lines=left_out_lines(result))
        if not as_json:
            for backend_id, reused in (result.get("metadata_cache_reused") or {}).items():
                if reused is not None:
                    typer.echo(f"  {backend_id}: metadata cache {'reused' if reused else 'built'}")


def left_out_lines(result: dict) -> list[str]:
    """Which of the configuration's rules left rows out, per backend, and where the rows are listed."""
    from hubpress.orchestration.artifacts import repo_key

    lines = []
    for backend_id, counts in (result.get("backends") or {}).items():
        dropped = counts.get("dropped") or {}
        if dropped:
            rules = ", ".join(f"{rule}: {count}" for rule, count in sorted(dropped.items()))
            lines.append(
                f"{backend_id}: {sum(dropped.values())} of {counts.get('seen', 0)} rows left out by the "
                f"configuration's rules ({rules})"
            )
    target = result["target"]
    lines.append(
        f"rows left out and why: the card and manifest.json (counts) of {target} list them; in the Prefect "
        f"UI, the run's `{repo_key('refresh-report', target)}` artifact"
    )
    return lines
