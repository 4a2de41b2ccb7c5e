"""`evolve`: the command line. Heavy libraries are imported inside commands so --help stays instant."""

from __future__ import annotations

import sys

from agent.app import app, err_console
from agent.commands import evaluate, guard, llm, serve, start, tune  # noqa: F401  (registers the commands)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
