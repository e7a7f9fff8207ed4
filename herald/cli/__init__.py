"""The ``herald`` command (:mod:`~herald.cli.commands`), its tables and the demo."""

from herald.cli.commands import cli, main

__all__ = ["cli", "main"]
