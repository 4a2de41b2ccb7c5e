"""User mistakes on the command line: one line on stderr, a non-zero exit, no traceback, nothing written astray."""

import pytest

from helpers import REPO, evolve, free_port

BM25 = "lexical: {tokenizer: english}\nfusion: {kind: none}\n"


def one_line_error(result, code=2):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_eval_limit_below_one_is_one_line(tmp_path, tiny_scifact):
    (tmp_path / "c.yaml").write_text(BM25)
    result = evolve("eval", "--evalset", str(tiny_scifact), "--config", "c.yaml", "--limit", "-1", cwd=tmp_path)
    assert "--limit must be at least 1, not -1" in one_line_error(result)


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, tiny_scifact):
    (tmp_path / "c.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1") + BM25.encode())
    result = evolve("eval", "--evalset", str(tiny_scifact), "--config", "c.yaml", cwd=tmp_path)
    assert "c.yaml: not UTF-8 text" in one_line_error(result)


def test_a_config_name_never_writes_outside_the_results_folder(tmp_path, tiny_scifact):
    project = tmp_path / "project"
    (tmp_path / "c.yaml").write_text("name: ../../../escaped\n" + BM25)
    result = evolve("eval", "--evalset", str(tiny_scifact), "--config", "c.yaml", "--project-dir", str(project),
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = list((project / ".evolve" / "results").iterdir())
    assert len(written) == 1 and written[0].name.startswith("scifact-tiny-default-escaped-")
    assert not list(tmp_path.glob("*escaped*")) and not list(project.glob("*escaped*"))


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "two words", "x" * 101])
def test_study_names_must_be_safe_file_names(tmp_path, tiny_scifact, name):
    project = tmp_path / "project"
    tune = evolve("tune", "--evalset", str(tiny_scifact), "--space", str(REPO / "experiments" / "spaces" / "demo.yaml"),
                  "--trials", "1", "--study", name, "--project-dir", str(project), cwd=tmp_path)
    assert "cannot be a file name" in one_line_error(tune)
    worker = evolve("worker", "--storage", f"sqlite:///{tmp_path}/optuna.db", "--study", name, "--project-dir",
                    str(project), cwd=tmp_path)
    assert "cannot be a file name" in one_line_error(worker)
    assert not (tmp_path / "escape").exists() and not (project / ".evolve" / "escape").exists()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_unreachable_study_database_is_one_line(tmp_path, kind):
    if kind == "postgresql":
        pytest.importorskip("psycopg")  # SQLAlchemy 2.1 drives postgresql:// with psycopg 3 (a dependency)
    url = {"sqlite": f"sqlite:///{tmp_path}/no-such-folder/optuna.db",
           "postgresql": f"postgresql://evolve:hunter2@127.0.0.1:{free_port()}/optuna"}[kind]
    result = evolve("worker", "--storage", url, "--study", "s", "--project-dir", str(tmp_path), cwd=tmp_path)
    said = one_line_error(result)
    assert "cannot open the Optuna storage" in said and "hunter2" not in said
    assert kind == "sqlite" or "postgresql://evolve:***@127.0.0.1" in said


@pytest.mark.parametrize(("poll", "said"), [("0s", "--poll must be longer than 0s"), ("soon", "--poll: not a duration")])
def test_a_following_worker_refuses_a_poll_it_cannot_wait(tmp_path, poll, said):
    storage = tmp_path / "optuna.db"
    result = evolve("worker", "--follow", "--poll", poll, "--storage", f"sqlite:///{storage}", "--project-dir",
                    str(tmp_path), cwd=tmp_path)
    assert said in one_line_error(result)
    assert not storage.exists()  # refused before the storage is opened


def test_the_loop_refuses_a_worker_wait_it_cannot_read_before_writing_anything(tmp_path):
    result = evolve("start", "--wait-for-workers", "soon", "--budget", "1m", "--project-dir", str(tmp_path),
                    cwd=tmp_path)
    assert "--wait-for-workers: not a duration: 'soon'" in one_line_error(result)
    assert list(tmp_path.iterdir()) == []  # no run, no project state


def test_a_model_folder_that_ships_its_own_code_is_refused_in_one_line_and_its_code_never_runs(tmp_path,
                                                                                             tiny_scifact):
    model = tmp_path / "model"
    model.mkdir()
    marker = tmp_path / "RAN"
    (model / "config.json").write_text('{"architectures": ["Evil"], "model_type": "evil", "auto_map": '
                                       '{"AutoModel": "modeling_evil.Evil", "AutoConfig": "configuration_evil.C"}}')
    for name in ("modeling_evil.py", "configuration_evil.py"):
        (model / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (tmp_path / "c.yaml").write_text(f"dense: {{model: {model}}}\n")
    result = evolve("eval", "--evalset", str(tiny_scifact), "--config", "c.yaml", cwd=tmp_path)
    assert "ships its own code" in one_line_error(result) and str(model) in result.stderr
    assert not marker.exists()
