"""One module per CLI command. Each defines `register(app: typer.Typer)` and imports heavy
libraries inside the command body, so `hubpress --help` stays fast."""
