"""The Typer app: one module per command group (parse, call, emit)."""
