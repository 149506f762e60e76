"""What a run shows in the Prefect UI: tables for the plan, a link to the commit, a markdown
summary and a progress bar. Every function is a no-op outside a flow or task run, so the same
pipeline code runs from the CLI, the Python API and tests without Prefect."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from uuid import UUID

from hubpress.targets.plan import PublishPlan

log = logging.getLogger("hubpress.artifacts")


def _in_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def flow_run_id() -> str | None:
    """The current flow run's id (recorded in manifests), or None outside a flow run."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else None


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100] or "hubpress"


def repo_key(kind: str, target: str) -> str:
    """`kind` for one target, e.g. `publish-summary-acme-org-faces`: the Artifacts page keeps a
    "latest" per key, so a key shared by every repo would show whichever repo ran last. A long
    target (a local path) keeps its tail and a short hash of the whole, so two paths ending alike
    keep apart."""
    slug = artifact_key(re.sub(r"^hf://(datasets|models)/", "", target))
    room = 100 - len(kind) - 1
    if len(slug) > room:
        digest = hashlib.sha256(target.encode()).hexdigest()[:8]
        slug = f"{slug[-(room - len(digest) - 1) :].strip('-')}-{digest}"
    return artifact_key(f"{kind}-{slug}")


def plan_table(plan: PublishPlan, key: str | None = None) -> None:
    if not _in_run():
        return
    from prefect.artifacts import create_table_artifact

    rows = [{"path": c.path, "change": c.kind, "bytes": c.size} for c in plan.changes]
    counts = {k: len(plan.of(k)) for k in ("added", "changed", "unchanged", "deleted")}
    create_table_artifact(
        key=artifact_key(key or repo_key("publish-plan", plan.target)),
        table=rows or [{"path": "(none)", "change": "-", "bytes": 0}],
        description=(
            f"Plan for {plan.target}@{plan.revision} against {(plan.parent_commit or 'empty')[:12]}: "
            + ", ".join(f"{n} {k}" for k, n in counts.items())
            + f"; {plan.upload_bytes:,} bytes to upload"
        ),
    )


def commit_link(url: str | None, description: str, target: str) -> None:
    if not _in_run() or not url:
        return
    from prefect.artifacts import create_link_artifact

    create_link_artifact(
        key=repo_key("published-commit", target), link=url, link_text=url, description=description
    )


def markdown(text: str, key: str, description: str | None = None) -> None:
    if not _in_run():
        return
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key=artifact_key(key), markdown=text, description=description)


def table(rows: Iterable[dict], key: str, description: str | None = None) -> None:
    if not _in_run():
        return
    from prefect.artifacts import create_table_artifact

    rows = list(rows)
    create_table_artifact(key=artifact_key(key), table=rows or [{"(empty)": ""}], description=description)


# Set by the command line when a person is watching (not with --json): progress then also shows
# as a bar on the terminal. Flows started by deployments or the Python API leave it off.
_terminal_bars = False


def show_terminal_progress(enabled: bool = True) -> None:
    global _terminal_bars
    _terminal_bars = enabled


def _log_through(console) -> list:
    """While a bar is live, Prefect's console log lines print through the bar's console, which
    draws them above the bar instead of through it. Returns what _restore_consoles puts back."""
    import logging

    try:
        from prefect.logging.handlers import PrefectConsoleHandler
    except ImportError:
        return []
    swapped = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            swapped.append((handler, handler.console))
            handler.console = console
    return swapped


def _restore_consoles(swapped: list) -> None:
    for handler, console in swapped:
        handler.console = console
    swapped.clear()


# Seconds between two updates of a progress artifact. Each update is a request to the Prefect
# server, made on the caller's thread (the build's loop, between one shard and the next upload):
# a changed night that builds three shards in a second made four requests, where one (100%)
# says as much. A longer step's artifact moves at its first advance after each interval; 100%,
# or where a failed step stopped (close), is always sent.
PROGRESS_INTERVAL = 1.0


class Progress:
    """Progress of a long step: a Prefect progress artifact (throttled to whole percents and to
    one update per PROGRESS_INTERVAL, the last always sent) and, from the command line, a bar on
    the terminal with count, rate and ETA. `clock`: the monotonic clock (tests pass their own)."""

    def __init__(
        self,
        total: int,
        description: str,
        unit: str = "files",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = max(total, 1)
        self.done = 0
        self._last = -1
        self._clock = clock
        self._sent_at = clock()
        self.id: UUID | None = None
        self._bar = None
        if _in_run():
            from prefect.artifacts import create_progress_artifact

            self.id = create_progress_artifact(progress=0.0, description=description)
        if _terminal_bars:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as Bar

            amount = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
            console = Console(stderr=True)  # beside the log lines, never in stdout
            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                *amount,
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                transient=True,
                console=console,
                # Not a terminal (stderr piped to a log or a caller): no bar, whose stop would
                # leave a blank line there, e.g. above the one `interrupted:` line.
                disable=not console.is_terminal,
            )
            self._task = self._bar.add_task(description, total=self.total)
            self._consoles = _log_through(self._bar.console)
            self._bar.start()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if self._bar is not None:
            self._bar.advance(self._task, amount)
            if self.done >= self.total:
                self.close()
        percent = int(100 * min(self.done, self.total) / self.total)
        if self.id is None or percent == self._last:
            return
        if percent < 100 and self._clock() - self._sent_at < PROGRESS_INTERVAL:
            return
        self._send(percent)

    def _send(self, percent: int) -> None:
        self._last, self._sent_at = percent, self._clock()
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(artifact_id=self.id, progress=float(percent))
        except Exception as exc:  # a progress bar must never fail a publish
            log.debug("progress artifact update failed: %s", exc)

    def close(self) -> None:
        """Stop the terminal bar and give the log its console back (also when a build failed);
        the artifact shows where the step stopped, if the throttle held that back."""
        percent = int(100 * min(self.done, self.total) / self.total)
        if self.id is not None and self.done and percent != self._last:
            self._send(percent)
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.stop()
            _restore_consoles(self._consoles)
