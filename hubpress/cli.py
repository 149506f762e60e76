"""The `hubpress` command line.

Errors that hubpress raises on purpose print as one or two lines and exit 1; `--debug` shows the
traceback; unusable arguments exit 2 (Typer/Click's convention).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

import hubpress  # noqa: F401  (applies the HF_HUB_ENABLE_HF_TRANSFER translation first)
from hubpress.errors import HubpressError

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
]


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
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


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=True)
    except HubpressError as exc:
        if debug:
            raise
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        raise SystemExit(130)


if __name__ == "__main__":
    main()
