"""Where the CLI writes: results to stdout, errors and notes to stderr, one line each.

Piped or logged output is never wrapped at 80 columns: an error stays one line that a log
search or ``grep`` finds whole, and tables get 160 columns.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
if not console.is_terminal:  # piped or logged: do not squeeze tables into 80 columns
    console = Console(width=160, soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True, highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``herald: <message>`` on stderr; return the exit to raise (``raise fail(...)``)."""
    errors.print(f"[red]herald:[/red] {escape(message)}")
    return typer.Exit(code)


def note(message: str) -> None:
    """A line for people on stderr (stdout stays the command's result, e.g. JSON lines)."""
    errors.print(f"[dim]herald:[/dim] {escape(message)}")


def line(text: str) -> None:
    """One plain line of result on stdout, printed as it is (no markup, no wrapping)."""
    console.print(text, markup=False, highlight=False)
