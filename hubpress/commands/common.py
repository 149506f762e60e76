"""What every command shares: running a flow quietly, and printing a result for a person or as JSON."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import typer

from hubpress.orchestration.console import is_signal_crash


def is_expected(exc: BaseException | None) -> bool:
    """Errors a person can act on from one line: hubpress's own, a disk that is full, read-only
    or not ours to write (the CLI's line names the path), and a remote's answer a client library
    raised on (S3's ClientError, ...), which the CLI says as one line (hubpress.targets.hub_failures)."""
    from hubpress.errors import DISK_ERRNOS, HubpressError

    if isinstance(exc, HubpressError):
        return True
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return True
    if exc is None:
        return False
    from hubpress.targets.hub_failures import outbound_failure

    return outbound_failure(exc) is not None


def error_object(exc: BaseException) -> dict[str, Any]:
    """A failed command's `--json` object: the one-line error, its kind, and the commit and target
    when a commit was made (exit 3)."""
    out: dict[str, Any] = {"error": " ".join(str(exc).split()), "kind": type(exc).__name__}
    for key in ("commit", "commit_url", "target"):
        if getattr(exc, key, None) is not None:
            out[key] = getattr(exc, key)
    return out


def validation_lines(exc) -> str:
    """A pydantic ValidationError as one line: `field: message; field: message`."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def json_error(args: list[str], error: BaseException | str, kind: str | None = None) -> None:
    """With --json on the command line, stdout still holds one object when the command fails."""
    if "--json" not in args:
        return
    failure = error_object(error) if isinstance(error, BaseException) else {"error": error}
    typer.echo(json.dumps({**failure, **({"kind": kind} if kind else {})}, sort_keys=True))


def _expected_error_names() -> set[str]:
    from hubpress.errors import HubpressError

    names, todo = set(), [HubpressError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


# Warnings the console left out because the command prints them from the result (the records
# marked hubpress_said_by_command): when the run fails there is no result, and _run_flow says them.
_held_for_the_command: list[str] = []


class _OneLineErrors(logging.Filter):
    """On the terminal, an error hubpress raises on purpose is said once, by the command's own
    `error:` line. Prefect would also log it as the task's and the flow's exception and again in
    each "Finished in state Failed(...)" line (4-5 times); those records are left out of the
    console only (the Prefect API and its UI keep them). `--debug` shows everything."""

    @property
    def names(self) -> set[str]:
        # Asked each time: error classes of modules imported after the filter was attached
        # (HubUnavailable, CacheError, UnsafeNameError) count too.
        return _expected_error_names()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "hubpress_said_by_command", False):
            _held_for_the_command.append(record.getMessage())
            return False  # a warning the result carries: the command prints it as its `warning:` line
        if record.getMessage().startswith("Still processing items"):
            return False  # Prefect's events worker flushing at exit: not news at the terminal
        if is_signal_crash(record.getMessage()):
            return False  # Ctrl-C: the command's own `interrupted:` line says it, with the repo's state
        if not record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
            return True
        if getattr(record, "hubpress_expected", False):  # its traceback was dropped: said by `error:`
            return False
        if record.exc_info and (
            type(record.exc_info[1]).__name__ in self.names or is_expected(record.exc_info[1])
        ):
            return False
        message = record.getMessage()
        if record.levelno >= logging.ERROR:  # "Finished in state Failed(...)", "failed with exception"
            names = (
                self.names | {"OSError"} if "[Errno 28]" in message or "[Errno 30]" in message else self.names
            )
            return not any(f"{name}:" in message or f"{name}(" in message for name in names)
        return True


def quiet_expected_errors_on_console() -> None:
    """Attach _OneLineErrors to Prefect's console handler (configured when prefect.main loads)."""
    if os.environ.get("HUBPRESS_DEBUG"):
        return
    import prefect.main  # noqa: F401  (sets up Prefect's logging handlers)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _OneLineErrors) for f in handler.filters
        ):
            handler.addFilter(_OneLineErrors())


def run_flow(run: Callable[[], Any], as_json: bool, before: Callable[[str | None], Any] | None = None) -> Any:
    """_run_flow, stopped by Ctrl-C promptly and tidily (hubpress.commands.interrupt)."""
    from hubpress.commands.interrupt import command_interruptible

    with command_interruptible():
        return _run_flow(run, as_json, before)


def _run_flow(run: Callable[[], Any], as_json: bool, before: Callable[[str | None], Any] | None) -> Any:
    """Run a flow. With --json, Prefect's own console logging is silenced so stdout holds one object.

    `before(api_url)`, when given, is asked first, once the Prefect API is known and before Prefect
    is imported: a result it returns is the command's result, and no flow run is created
    (hubpress.orchestration.before_run: an unchanged publish is recorded as an event)."""
    from huggingface_hub.utils import disable_progress_bars

    from hubpress.errors import hide_userinfo
    from hubpress.orchestration import artifacts

    if as_json:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        logging.getLogger("prefect").setLevel(logging.WARNING)
        disable_progress_bars()  # huggingface_hub's upload bars (files, bytes, rate, ETA)
    else:
        artifacts.show_terminal_progress()  # shard building
    from hubpress.orchestration.server import api_url_for_commands, check_configured_api, prefect_api

    # Prefect's configured API, else the local server (started by the first command that needs it).
    said = []

    def announce(line: str) -> None:
        said.append(line)
        if not as_json:
            typer.secho(line, err=True, fg=typer.colors.BRIGHT_BLACK)

    where = api_url_for_commands(announce=announce, check=before is None)
    if before is not None:
        result = before(where)
        if result is not None:
            if not as_json:
                from hubpress.orchestration.events import UNCHANGED_EVENT

                typer.secho(
                    f"Prefect: recorded as a {UNCHANGED_EVENT} event (Event feed) at "
                    f"{hide_userinfo(where.removesuffix('/api'))}; no flow run was needed",
                    err=True,
                    fg=typer.colors.BRIGHT_BLACK,
                )
            return result
        check_configured_api()  # a flow run follows: the API must answer (asked only now, see there)
    if not as_json and not said:
        typer.secho(
            f"Prefect: runs are recorded at {hide_userinfo(where.removesuffix('/api'))}"
            if where
            else "Prefect: using a temporary server (HUBPRESS_PREFECT_SERVER=temporary)",
            err=True,
            fg=typer.colors.BRIGHT_BLACK,
        )
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    quiet_expected_errors_on_console()

    # A command waits ~1 s at the end of a run for the heartbeat thread. The person at the terminal
    # sees a crash for themselves, so command runs skip heartbeats; deployments keep them.
    # (Refused parameter values are pydantic ValidationErrors: hubpress.commands.cli prints them, exit 2.)
    _held_for_the_command.clear()
    with prefect_api(where), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        try:
            return run()
        except Exception:
            # No result to print them from (a refused name, then a taken --tag): said before the error.
            for line in dict.fromkeys(_held_for_the_command) if not as_json else ():
                typer.secho(f"warning: {line}", err=True, fg=typer.colors.YELLOW)
            raise
        finally:
            _held_for_the_command.clear()


def unchanged(params: Any) -> Callable[[str | None], Any]:
    """run_flow's `before` for publish-dataset and publish-lora: an unchanged publish is answered
    without a flow run (hubpress.orchestration.before_run). Otherwise the token must be able to
    write the target, asked here, before any flow run: an unchanged night asks the Hub one
    question (its head), not two."""

    def check(api_url: str | None) -> Any:
        from hubpress.commands.preflight import check_token_accepted
        from hubpress.flows.params import PublishDatasetParams
        from hubpress.orchestration.before_run import skip_if_unchanged

        result = skip_if_unchanged(params, api_url, entry="cli")
        if result is None:
            kind = "dataset" if isinstance(params, PublishDatasetParams) else "model"
            check_token_accepted(params.target, kind, params.dry_run, getattr(params, "create_pr", False))
        return result

    return check


def emit_result(
    result: dict[str, Any], as_json: bool, source: str | None = None, skipped_lines: list[str] | None = None
) -> None:
    """The result as a person reads it (or one JSON object). `skipped_lines`: what a command says
    about its skipped rows in place of publish-dataset's pointer at `hubpress scan` (a refresh's
    rows are left out by its configuration's rules, not by intake)."""
    from hubpress.targets.publish import bytes_phrase

    if not as_json:  # names of the target the gate refused: one line each (--json lists them)
        for line in result.get("refused_names") or ():
            typer.secho(f"warning: {line}", err=True, fg=typer.colors.YELLOW)
    for warning in result.get("warnings") or []:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True, default=str))
        return
    if result.get("dry_run"):
        planned = result.get("planned_bytes")
        would = "" if planned is None else f"; a publish would send at most {planned:,} bytes"
        typer.echo(f"Dry run for {result['target']}: nothing uploaded{would}.")
    elif result.get("commit") is None:
        typer.echo(f"{result['target']} is up to date: nothing uploaded, no commit made.")
    else:
        typer.echo(
            f"Published to {result['target']} at {result['commit'][:12]}: "
            f"{len(result['uploaded_files'])} file(s), {bytes_phrase(result)}."
        )
        if result.get("commit_url"):
            typer.echo(f"  {result['commit_url']}")
    if "shards_built" in result and not result.get("listing_unchanged"):
        from hubpress.shards.run_result import reuse_line

        typer.echo(f"  {reuse_line(result)}")
    if result.get("pr_url"):
        typer.echo(f"  pull request: {result['pr_url']}")
    if result.get("tag"):
        typer.echo(f"  tag: {result['tag']}")
    plan = result.get("plan") or {}
    for kind in ("added", "changed", "deleted", "unchanged"):
        paths = plan.get(kind) or []
        if paths:
            shown = ", ".join(paths[:5]) + (f", ... (+{len(paths) - 5})" if len(paths) > 5 else "")
            typer.echo(f"  {kind}: {len(paths)}  {shown}")
    if "samples" in result:
        for split, count in sorted(result["samples"].items()):
            skipped = (result.get("skipped") or {}).get(split, 0)
            typer.echo(f"  {split}: {count} samples" + (f", {skipped} skipped" if skipped else ""))
    from hubpress.sources.report import corrections_line

    if corrected := corrections_line(result.get("corrections") or []):
        typer.echo(f"  {corrected}")
    if skipped_lines is not None:
        for line in skipped_lines if any((result.get("skipped") or {}).values()) else ():
            typer.echo(f"  {line}")
    elif any((result.get("skipped") or {}).values()):
        where = f"`hubpress scan {source}`" if source else "`hubpress scan SOURCE`"
        typer.echo(
            f"  skipped samples and why: {where} prints them; in the Prefect UI, the run's "
            "`intake-report` artifact lists them"
        )
