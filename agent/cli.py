"""`evolve`: the command line. Heavy libraries are imported inside commands so --help stays instant.

User mistakes end in one line on stderr and a non-zero exit, never a traceback: commands call
``fail()`` for the mistakes they expect (Typer reports a malformed command line itself), and
:func:`main` is the safety net for the rest: the exception types below mean a mistake in what the
user gave (a file, a config, a policy, an unreachable endpoint or database) and exit 2 with their
message. Any other exception is a bug and keeps its traceback. ``EVOLVE_DEBUG=1`` shows the
traceback of user errors too.
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from agent.app import app, err_console
# each module registers its commands; --help lists them in this order (the loop, studies, decisions, serving)
from agent.commands import start, tune  # noqa: E402,F401,I001
from agent.commands import eval as eval_command  # noqa: E402,F401
from agent.commands import promote, review, approve, audit  # noqa: E402,F401
from agent.commands import ingest, serve, feedback, llm, evalset  # noqa: E402,F401
from agent.commands import judge, train  # noqa: E402,F401

USER_ERRORS = (
    "evalsets.errors.EvalSetError", "evalsets.feedback.StoreLocked", "evalsets.feedback.FeedbackRefused",
    "pipelines.config.ConfigError", "experiments.space.SpaceError", "guardrails.policy.PolicyError",
    "guardrails.project.DecisionError", "guardrails.ledger.LogError", "pipelines.llm.client.LLMUnavailable",
    "pipelines.llm.models.ModelUnavailable", "pipelines.remote.client.RemoteError",
    "pipelines.remote.registry.RegistryError", "pipelines.embedders.base.EmbeddingError",
    "pipelines.embedders.base.ModelCodeRefused", "httpx.ConnectError",
    "httpx.ConnectTimeout",
    "sqlalchemy.exc.OperationalError",
)
"""Exceptions that are the user's to fix, by module and name: an exception of one of them can only exist when
its module is loaded, so checking needs no import (and `evolve --help` stays instant)."""


def user_error(err: BaseException) -> bool:
    for qualified in USER_ERRORS:
        module, name = qualified.rsplit(".", 1)
        loaded = sys.modules.get(module)
        kind = getattr(loaded, name, None) if loaded is not None else None
        if isinstance(kind, type) and isinstance(err, kind):
            return True
    return isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError))


def one_line(err: BaseException) -> str:
    """evolve's own messages as they are (written to be read, a list of bad lines included); the first line of
    a library's (a database driver's message has its own cause first, then pages of background)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = str(getattr(err, "orig", None) or err).strip() or type(err).__name__
    if type(err).__module__.split(".")[0] in {"agent", "evalsets", "experiments", "guardrails", "pipelines"}:
        return text
    return text.splitlines()[0]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as err:
        if os.environ.get("EVOLVE_DEBUG") == "1" or not user_error(err):
            raise
        err_console.print(f"[bold red]error:[/] {escape(one_line(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
