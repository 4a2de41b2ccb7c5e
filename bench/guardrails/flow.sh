#!/usr/bin/env bash
# Issue-7 acceptance on real data, in a fresh project dir: guard two candidates against a BM25-kiwi
# champion on held-back SciFact (test) + KorQuAD queries, approve the one that passes, serve it, roll back,
# and print the audit log. Reuses the repo's embedding cache. Output: bench/results/guardrails_flow.md
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DATA=${DATA:-$ROOT/../shared/data}
P=$(mktemp -d /tmp/evolve-guard-XXXX)
export EVOLVE_EMBEDDING_CACHE=$ROOT/.evolve/cache/embeddings.sqlite COLUMNS=160
E="$ROOT/.venv/bin/evolve"
cat > "$P/default.yaml" <<'YAML'  # the champion before any approval
name: bm25-kiwi
lexical: {tokenizer: kiwi}
fusion: {kind: none}
YAML
cat > "$P/policy.yaml" <<'YAML'
primary_metric: ndcg@10
min_gain: 0.005
significance: {test: permutation, p_value: 0.05, looks: alpha_spending, resamples: 10000, seed: 0}
max_regression: {default: 0.01, per_set: {korquad-v1-dev: 0.005}, failure_set: 0.0}
max_latency_p95_ms: 1000
max_index_mb: 4096
allowed_licences: [MIT, Apache-2.0]
min_queries: 30
YAML
cand() { printf 'name: %s\ndense: {model: all-MiniLM-L6-v2}\nlexical: {tokenizer: kiwi}\nfusion: {kind: weighted, dense_weight: %s}\n' "$1" "$2" > "$P/$1.yaml"; }
cand minilm-kiwi-w030 0.3
cand minilm-kiwi-w015 0.15
run() { echo "\$ evolve $*"; "$E" "$@" --project-dir "$P" 2>&1 | grep -v DEBUG || true; echo; }
{
  echo "# guardrails flow ($(date -u +%Y-%m-%dT%H:%MZ)), project $P"
  echo '```'
  run promote --config "$P/minilm-kiwi-w030.yaml" --evalset "$DATA/scifact" --evalset "$DATA/korquad-v1-dev" --heldout-limit 100 --policy "$P/policy.yaml"
  run promote --config "$P/minilm-kiwi-w015.yaml" --evalset "$DATA/scifact" --evalset "$DATA/korquad-v1-dev" --heldout-limit 100 --policy "$P/policy.yaml"
  run review --since 7d
  run approve 1 --reason "better on SciFact, within the Korean budget" --yes
  PORT=8799
  "$E" serve --corpus "$DATA/korquad-v1-dev" --port $PORT --project-dir "$P" > "$P/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
  echo "\$ curl /health  (after approve)"; curl -s "http://127.0.0.1:$PORT/health"; echo; echo
  kill $SERVER; wait $SERVER 2>/dev/null || true
  run rollback --reason "demo: roll back to the previous champion" --yes
  echo "\$ cat champion.yaml (absent after rolling back the first approval: the default.yaml serves)"; cat "$P/champion.yaml" 2>/dev/null || true; echo
  run audit --verify
  run audit
  echo '```'
} | tee bench/results/guardrails_flow.md
