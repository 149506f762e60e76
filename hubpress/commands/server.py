"""`hubpress server start|stop|status`: a local background Prefect server that later commands reuse."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    server_app = typer.Typer(
        help="The local background Prefect server (SQLite, under HUBPRESS_HOME/prefect, by default "
        "~/.local/state/hubpress/prefect). The first command that runs a flow starts it; later hubpress "
        "commands, from any directory, use it when Prefect has no other API URL: no start-up cost per "
        "command, and every run appears in its UI.",
        no_args_is_help=True,
    )

    @server_app.command("start")
    def start(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(
            None, help="Port (default: the one used last, else 4200; any free port when that is taken)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Start the server in the background (or report the one already running)."""
        from hubpress.orchestration.server import start_server

        if not as_json:
            typer.secho("Starting a local Prefect server (takes 5-15 s)...", err=True, fg="bright_black")
        server, started = start_server(host=host, port=port)
        _report(server, "started" if started else "already running", as_json)
        if not started and port is not None and server.port != port:
            typer.secho(
                f"note: the local server already runs on port {server.port}, so --port {port} was not "
                "used; to move it: `hubpress server stop`, then start it again with --port.",
                err=True,
                fg=typer.colors.YELLOW,
            )

    @server_app.command("stop")
    def stop(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        """Stop the server started by `hubpress server start`. Its database is kept."""
        from hubpress.orchestration.server import stop_server

        server = stop_server()
        if as_json:
            typer.echo(json.dumps({"status": "stopped" if server else "not running"}))
        else:
            typer.echo(
                "Stopped the local Prefect server." if server else "No local Prefect server is running."
            )

    @server_app.command("status")
    def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
        """Say whether the server runs, and where (exit 1 when it does not)."""
        from hubpress.orchestration.server import running_server

        server = running_server()
        if server is None:
            if as_json:
                typer.echo(json.dumps({"status": "not running"}))
            else:
                typer.echo("No local Prefect server is running (start one with `hubpress server start`).")
            raise typer.Exit(1)
        _report(server, "running", as_json)

    @server_app.command("env")
    def env() -> None:
        """Print the export line that points `prefect`, workers and trainers at the local server:
        `eval "$(hubpress server env)"`. The address stays the same across restarts (exit 1, with
        the line still printed, when the server is not running now)."""
        from hubpress.orchestration.server import (
            DEFAULT_PORT,
            planned_api_url,
            remembered_port,
            running_server,
        )

        url = planned_api_url()
        if url is None:  # another process holds the port: never export its address
            typer.secho(
                "note: the local Prefect server is not running, and its port "
                f"{remembered_port() or DEFAULT_PORT} is taken by another process (another HUBPRESS_HOME's "
                "server?): run `hubpress server start` (it chooses a free port), then `hubpress server env`.",
                err=True,
                fg=typer.colors.YELLOW,
            )
            raise typer.Exit(1)
        typer.echo(f"export PREFECT_API_URL={url}")
        if running_server() is None:
            typer.secho(
                "note: the local Prefect server is not running; `hubpress server start` starts it there.",
                err=True,
                fg=typer.colors.YELLOW,
            )
            raise typer.Exit(1)

    app.add_typer(server_app, name="server")


def _report(server, status: str, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {"status": status, "api_url": server.url, "ui_url": server.ui_url, "pid": server.pid},
                sort_keys=True,
            )
        )
        return
    typer.echo(f"Prefect server {status}: UI {server.ui_url}  (API {server.url}, pid {server.pid})")
    typer.echo(f"  every hubpress command of this user now records its runs there; log: {server.log}")
    typer.echo(f"  for `prefect`, workers and trainers: export PREFECT_API_URL={server.url}")
