"""The `hubpress` command line.

Errors that hubpress raises on purpose print as one or two lines and exit 1; `--debug` shows the
traceback; unusable arguments exit 2 (Typer/Click's convention).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

import typer

import hubpress  # noqa: F401  (HF_HUB_ENABLE_HF_TRANSFER translation, Prefect telemetry off)
from hubpress.commands import colour
from hubpress.commands.common import is_expected, json_error, validation_lines
from hubpress.errors import HubpressError, disk_error

app = typer.Typer(
    name="hubpress",
    help="Publish image-editing datasets and LoRA weights to the Hugging Face Hub, and keep them fresh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command modules, in the order `--help` lists them.
COMMAND_MODULES = [
    "scan",
    "publish_dataset",
    "publish_lora",
    "download_lora",
    "release",
    "refresh",
    "serve",
    "server",
    "staging",
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hubpress {hubpress.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks on errors (also accepted after the command)."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print hubpress's version and exit."
    ),
) -> None:
    if debug:
        os.environ["HUBPRESS_DEBUG"] = "1"


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"hubpress.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"hubpress.commands.{name}":
                continue  # not written yet
            raise
        module.register(app)


_register_commands()


class _QuietExpectedErrors(logging.Filter):
    """Prefect logs a flow's exception with its traceback; for errors hubpress raises on purpose
    the message says everything, so the console shows it without the traceback (--debug keeps
    it). Logs sent to the Prefect API are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and is_expected(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
            record.hubpress_expected = True  # the console's filter leaves it to the command's line
        return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _run(args: list[str], debug: bool) -> None:
    """The command; an exception a remote's answer caused inside a client library (not JSON, a
    stall, a truncated download) becomes hubpress's one-line error (hubpress.targets.hub_failures)."""
    try:
        app(args=args, prog_name="hubpress", standalone_mode=True, **colour.typer_options())
    except SystemExit as exc:
        from hubpress.commands.interrupt import (
            INTERRUPTED_EXIT_CODE,
            interrupted_line,
            stopped_without_a_word,
        )

        if exc.code == INTERRUPTED_EXIT_CODE and stopped_without_a_word(exc):
            typer.secho(interrupted_line(args), err=True, fg=typer.colors.YELLOW)
        raise
    except Exception as exc:
        from hubpress.targets.hub_failures import outbound_failure

        failure = None if debug else outbound_failure(exc)
        if failure is None:
            raise
        raise failure from exc


def main(argv: list[str] | None = None) -> None:
    with colour.no_colour_when_asked():  # NO_COLOR: the error lines below too
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from pydantic import ValidationError

    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    if debug:  # anywhere on the line, before or after the command: the root option takes it
        args = ["--debug", *(a for a in args if a != "--debug")]
    if not debug:
        # The terminal shows hubpress's result, progress and warnings; Prefect's INFO lines (run
        # and task states, the temporary server's start) go to the Prefect API and its UI, so a
        # failed run ends in one line, not hundreds. Set here, when the command runs (not when
        # this module is imported), before Prefect configures its logging.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    if not debug:
        # Prefect warns (two lines) when it cannot create PREFECT_HOME; the server that then cannot
        # open its database says the same in the command's one-line error.
        warnings.filterwarnings("ignore", message="Failed to create the Prefect home directory")
        quiet = _QuietExpectedErrors()
        for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(quiet)
    try:
        _run(args, debug)
    except ValidationError as exc:  # a parameter value the flow's model refuses: unusable arguments
        if debug:
            raise
        json_error(args, validation_lines(exc), "ValidationError")
        typer.secho(f"error: {validation_lines(exc)}", err=True, fg=typer.colors.RED)
        raise SystemExit(2)
    except OSError as exc:  # a full or read-only disk outside any flow step that names it
        failure = None if debug else disk_error(exc, "a local file")
        if failure is None:
            raise
        json_error(args, str(failure), type(failure).__name__)
        typer.secho(f"error: {failure}", err=True, fg=typer.colors.RED)
        raise SystemExit(1)
    except HubpressError as exc:
        if debug:
            raise
        json_error(args, exc)  # a commit made is named there too
        typer.secho(f"error: {_one_line(str(exc))}", err=True, fg=typer.colors.RED)
        raise SystemExit(exc.exit_code)
    except RuntimeError as exc:
        # Prefect's temporary server did not come up (a busy machine): say what to do, in one line.
        if debug or "ephemeral Prefect API server" not in str(exc):
            raise
        typer.secho(
            "error: Prefect's temporary server did not start in time (the machine may be busy). Start one "
            "that every command reuses with `hubpress server start`, or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        raise SystemExit(130)


if __name__ == "__main__":
    from hubpress.commands.entry import run_as_a_process

    run_as_a_process(main)
