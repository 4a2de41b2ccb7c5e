"""The `evolve` command as a user runs it: a real subprocess."""

import json
import re

import pytest

from helpers import evolve


@pytest.fixture
def hybrid_config(tmp_path):
    path = tmp_path / "hybrid.yaml"
    path.write_text("name: tiny-hybrid\nchunking: {kind: sentence, size: 400}\ndense: {model: all-MiniLM-L6-v2}\n"
                    "lexical: {tokenizer: english}\nfusion: {kind: rrf}\n")
    return path


def test_eval_prints_metrics_writes_per_query_results_and_reuses_the_cache(tiny_scifact, hybrid_config, tmp_path):
    out = tmp_path / "per-query.jsonl"
    first = evolve("eval", "--evalset", str(tiny_scifact), "--config", str(hybrid_config), "--output", str(out),
                   "--project-dir", str(tmp_path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "ndcg@10" in first.stdout and "tiny-hybrid" in first.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and {"query_id", "ndcg@10", "mrr@10", "top10", "relevant"} <= set(rows[0])
    assert " 0 from cache" in first.stdout
    computed = int(re.search(r"chunk embeddings: 0 from cache, (\d+) computed", first.stdout).group(1))
    second = evolve("eval", "--evalset", str(tiny_scifact), "--config", str(hybrid_config), "--project-dir",
                    str(tmp_path), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert re.search(rf"chunk embeddings: {computed} from cache, 0 computed", second.stdout), second.stdout
    assert list((tmp_path / ".evolve" / "results").glob("scifact-tiny-default-tiny-hybrid-*.jsonl"))


@pytest.mark.parametrize("config_text, evalset_name, expected", [
    ("dense: {model: no-such-model}\n", None, "unknown embedding model 'no-such-model'"),
    ("lexical: {tokenizer: regex}\nbogus: 1\n", None, "bogus: Extra inputs are not permitted"),
    ("lexical: {tokenizer: regex}\nfusion: {kind: none}\n", "missing", "evaluation set folder not found"),
])
def test_user_mistakes_exit_2_with_a_message_not_a_traceback(tmp_path, tiny_scifact, config_text, evalset_name,
                                                            expected):
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    evalset = tmp_path / evalset_name if evalset_name else tiny_scifact
    result = evolve("eval", "--evalset", str(evalset), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr


def test_models_lists_the_registry(tmp_path):
    result = evolve("models", cwd=tmp_path)
    assert result.returncode == 0
    assert "multilingual-e5-small" in result.stdout and "all-MiniLM-L6-v2" in result.stdout
