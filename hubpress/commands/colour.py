"""NO_COLOR (https://no-color.org): set to any non-empty value, no colour on the terminal.

Click (under Typer) colours `secho` whenever the stream is a terminal and ignores NO_COLOR, so the
command's `error:` and `warning:` lines stayed red and yellow for someone who had turned colour off.
Click asks the current context whether to colour: a context with color=False around the whole
command (its error lines are printed after Typer's own context has ended) and the same for Typer's
context answer no."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


def colour_off() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def typer_options() -> dict[str, Any]:
    """Extra arguments for the Typer app's call: its context colours only when allowed."""
    return {"color": False} if colour_off() else {}


@contextlib.contextmanager
def no_colour_when_asked() -> Iterator[None]:
    if not colour_off():
        yield
        return
    import typer
    from typer.core import TyperCommand

    with typer.Context(TyperCommand(name="hubpress"), color=False):
        yield
