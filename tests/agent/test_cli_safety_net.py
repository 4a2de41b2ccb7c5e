"""The CLI's safety net in-process: a user error is one line on stderr and exit 2, a bug keeps its traceback,
and every error type the net names exists."""

import sys

import pytest


class NotOurs(Exception):
    pass


@pytest.mark.parametrize("debug", ["", "1"])
def test_the_safety_net_turns_user_errors_into_one_line_and_keeps_bugs_visible(monkeypatch, capsys, debug):
    import agent.cli
    from evalsets import EvalSetError

    monkeypatch.setenv("EVOLVE_DEBUG", debug)

    def raising(error):
        def app():
            raise error
        return app

    monkeypatch.setattr(agent.cli, "app", raising(EvalSetError("bad line", "q.jsonl", 3)))
    if debug:  # EVOLVE_DEBUG=1: the traceback of a user error too
        with pytest.raises(EvalSetError):
            agent.cli.main()
    else:
        with pytest.raises(SystemExit) as exited:
            agent.cli.main()
        assert exited.value.code == 2 and capsys.readouterr().err.strip() == "error: q.jsonl:3: bad line"
    monkeypatch.setattr(agent.cli, "app", raising(FileNotFoundError(2, "No such file or directory", "x.yaml")))
    if not debug:
        with pytest.raises(SystemExit):
            agent.cli.main()
        assert capsys.readouterr().err.strip() == "error: x.yaml: No such file or directory"
    monkeypatch.setattr(agent.cli, "app", raising(NotOurs("a bug")))
    with pytest.raises(NotOurs):  # not a user error: its traceback stays
        agent.cli.main()
    assert "agent.cli" in sys.modules


def test_every_user_error_type_the_safety_net_names_exists():
    """The net names types by module and name (so it needs no import): a type that moved would silently be lost."""
    import importlib

    from agent.cli import USER_ERRORS

    for qualified in USER_ERRORS:
        module, name = qualified.rsplit(".", 1)
        kind = getattr(importlib.import_module(module), name, None)
        assert isinstance(kind, type) and issubclass(kind, Exception), qualified
