"""`hubpress scan SOURCE`: what intake finds in a dataset, without building or uploading anything.

Runs the plain intake functions (no Prefect), so it is quick. Exit codes: 0 done, 1 when
--on-error fail tripped, 2 for unusable arguments (including a source that cannot be read).
"""

from __future__ import annotations

import json

import typer

from hubpress.commands.options import model_command
from hubpress.flows.params import PublishDatasetParams

# The intake options are PublishDatasetParams' (the same names, defaults, choices and help as
# publish-dataset and the deployment form): hubpress.commands.options derives them.
INTAKE_FIELDS = ("layout", "on_error", "allow_missing_target", "prompt_encoding", "max_pixels")


@model_command(PublishDatasetParams, arguments={"source": "SOURCE"}, include=INTAKE_FIELDS, build=False)
def scan(
    intake_options: dict,
    fix_source: bool = typer.Option(
        False,
        "--fix-source",
        help="Rename files whose bytes disagree with their extension and rewrite the CSVs.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Decoding processes (default: CPUs)."),
) -> None:
    """Discover and validate a dataset (folder or CSV layout) and report what would be published."""
    from hubpress.errors import ConfigError, SourceError, ValidationFailed
    from hubpress.sources.intake import fix_source as apply_fixes
    from hubpress.sources.intake import run_intake
    from hubpress.sources.report import render_text, scan_json
    from hubpress.storage.hashcache import CacheError

    defaults = {n: PublishDatasetParams.model_fields[n].default for n in INTAKE_FIELDS}

    def intake():
        return run_intake(**{**defaults, **intake_options}, workers=workers)

    def show(report) -> None:
        if as_json:
            typer.echo(json.dumps(scan_json(report), ensure_ascii=False))
        else:
            typer.echo(render_text(report))

    try:
        report = intake()
        if fix_source:
            fixes = apply_fixes(report)
            for fix in fixes:
                arrow = f" -> {fix.to}" if fix.to else ""
                typer.echo(f"{fix.action}: {fix.path}{arrow} ({fix.detail})", err=as_json)
            if not fixes:
                typer.echo("--fix-source: nothing to change", err=as_json)
            else:
                report = intake()  # what the source holds now
        show(report)
    except ValidationFailed as exc:
        failed = getattr(exc, "report", None)
        if failed is not None:
            show(failed)
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    except (SourceError, ConfigError) as exc:
        if as_json:  # stdout holds one object, as every command's --json
            from hubpress.commands.common import error_object

            typer.echo(json.dumps(error_object(exc), sort_keys=True))
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        # As publish-dataset: a source without a dataset, or a cache it cannot use, exits 1; an
        # option value it refuses 2.
        raise typer.Exit(1 if isinstance(exc, SourceError | CacheError) else 2)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
