"""`hubpress staging list` and `hubpress staging clean`: what the staging area holds (sealed shards,
the folders of runs) and the policy that sweeps it (hubpress.shards.runs)."""

from __future__ import annotations

import json
import os
import time

import typer

_STAGING = typer.Option(
    None, "--staging", help="Local directory or s3://bucket/prefix (default: HUBPRESS_STAGING)."
)
_JSON = typer.Option(False, "--json", help="Print one JSON object.")


def register(app: typer.Typer) -> None:
    staging_app = typer.Typer(
        help="Inspect and clean the staging area: sealed shards kept for resume, and run folders.",
        no_args_is_help=True,
    )
    app.add_typer(staging_app, name="staging")

    @staging_app.command("list")
    def list_command(staging: str = _STAGING, as_json: bool = _JSON) -> None:
        """Sealed and unsealed shards (count, bytes, age) and every run folder with its lease."""
        from hubpress.shards.release_stages import release_stages
        from hubpress.shards.runs import is_run_id, read_leases
        from hubpress.shards.shard_store import ShardStore

        where = _open(staging)
        now = time.time()
        shards = list(ShardStore(where).entries())
        releases = release_stages(where)
        runs = [
            {
                "run": run,
                "live": lease is not None and lease.is_live(now),
                "host": lease.host if lease else None,
                "pid": lease.pid if lease else None,
                "age_seconds": round(now - lease.renewed) if lease else None,
                "shards_named": len(lease.keys) if lease else 0,
                # no lease and not a run id of hubpress's: a user's folder, never cleaned
                "left_alone": lease is None and not is_run_id(run),
            }
            for run, lease in read_leases(where)
        ]
        sealed = [s for s in shards if s.sealed]
        listing = {
            "staging": where.storage.root,
            "sealed_shards": len(sealed),
            "sealed_bytes": sum(s.size for s in sealed),
            "unsealed_shards": len(shards) - len(sealed),
            "unsealed_bytes": sum(s.size for s in shards if not s.sealed),
            "runs": runs,
            "shards": [_entry("key", s, now) for s in shards],
            # What post-training releases staged and have not published (or were killed in).
            "release_stages": [_entry("stage", s, now) for s in releases],
            "release_bytes": sum(s.size for s in releases),
        }
        if as_json:
            typer.echo(json.dumps(listing, sort_keys=True))
            return
        from hubpress.shards.card import human_size

        typer.echo(
            f"{listing['staging']}: {len(sealed)} sealed shard(s), {human_size(listing['sealed_bytes'])}; "
            f"{listing['unsealed_shards']} unsealed, {human_size(listing['unsealed_bytes'])}; "
            f"{len(runs)} run folder(s); {len(releases)} release stage(s), {human_size(listing['release_bytes'])}"
        )
        for stage in listing["release_stages"]:
            state = "sealed" if stage["sealed"] else "unsealed"
            age = "" if stage["age_seconds"] is None else f", {_age(stage['age_seconds'])} old"
            typer.echo(f"  release stage {stage['stage']}: {state}, {human_size(stage['size'])}{age}")
        for run in runs:
            if run["left_alone"]:
                typer.echo(f"  run {run['run']}: not a hubpress run folder (no lease): left alone")
                continue
            state = "in use" if run["live"] else "ended"
            owner = f"{run['host']}:{run['pid']}" if run["host"] else "no lease"
            typer.echo(f"  run {run['run']}: {state} ({owner}), {run['shards_named']} shard(s) named")

    @staging_app.command("clean")
    def clean_command(
        staging: str = _STAGING,
        everything: bool = typer.Option(
            False,
            "--all",
            help="Remove every shard and run folder no live run uses, not only what the policy says.",
        ),
        as_json: bool = _JSON,
    ) -> None:
        """Apply the staging policy now: remove unused sealed shards and release stages older than
        HUBPRESS_STAGING_MAX_AGE_HOURS (the oldest first while over HUBPRESS_STAGING_MAX_SIZE) and
        ended runs' folders. Nothing a live run names is ever removed."""
        from hubpress.shards.card import human_size
        from hubpress.shards.release_stages import is_release_stage
        from hubpress.shards.runs import StagingPolicy, sweep

        where = _open(staging)
        plan = sweep(where, StagingPolicy.from_settings(where.settings), everything=everything)
        releases = sorted(s.key for s in plan.shards if is_release_stage(s.key))
        shards = len(plan.shards) - len(releases)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "staging": where.storage.root,
                        "removed_shards": shards,
                        "removed_bytes": plan.bytes,
                        "removed_runs": plan.runs,
                        "removed_release_stages": releases,
                    },
                    sort_keys=True,
                )
            )
            return
        typer.echo(
            f"Removed {shards} shard(s), {len(releases)} release stage(s), {human_size(plan.bytes)} in all, "
            f"and {len(plan.runs)} ended run folder(s) from {where.storage.root}."
        )


def _entry(name: str, stored, now: float) -> dict:
    """One shard or release stage of `staging list --json`."""
    age = None if stored.modified is None else round(now - stored.modified)
    return {name: stored.key, "size": stored.size, "sealed": stored.sealed, "age_seconds": age}


def _age(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}(s)"
    return f"{seconds} second(s)"


def _open(staging: str | None):
    from hubpress.commands.preflight import check_staging
    from hubpress.settings import get_settings
    from hubpress.shards.staging import Staging

    # As for a publish: a file, or a scheme that is not s3://, is one line, not an empty listing.
    check_staging(staging)
    settings = get_settings({"staging": staging} if staging else None)
    where = Staging(settings.staging, settings)
    check_staging_exists(where.storage, settings.staging)
    return where


def check_staging_exists(storage, named: str) -> None:
    """A staging location that is not there is a typo (or the wrong machine), never "0 sealed
    shards": one line naming it. Only looked at: nothing is created."""
    from hubpress.errors import ConfigError
    from hubpress.storage.files import LocalStorage

    if isinstance(storage, LocalStorage):
        missing = not os.path.isdir(storage.root)
    else:  # S3 refusing (or failing) the question is said as such, naming the bucket
        missing = not storage.bucket_exists()
    if missing:
        raise ConfigError(
            f"staging {named!r} does not exist ({storage.root}): nothing was ever staged there. "
            "Check --staging or HUBPRESS_STAGING."
        )
