#!/usr/bin/env bash
# Requests/s for POST /search of a real `evolve serve` with the default config, measured with wrk.
#   bench/serving/load.sh [CORPUS_DIR] [CONFIG]   (default: ../shared/data/korquad-v1-dev, the packaged default config)
# Every request embeds its query (no query cache), like a new user question. Writes bench/results/serve.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${1:-../shared/data/korquad-v1-dev}
CONFIG=${2:-pipelines/configs/default.yaml}
PORT=${PORT:-8788}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
mkdir -p bench/results
python3 -c "import json,sys; [print(json.loads(l)['text'].replace('\n',' ')) for l in open('$CORPUS/queries.jsonl')]" \
  > bench/results/.queries.txt
PROJECT=${PROJECT:-.}
.venv/bin/evolve serve --corpus "$CORPUS" --config "$CONFIG" --port "$PORT" --project-dir "$PROJECT" \
  > bench/results/.serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
{
  echo "# POST /search load test ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "corpus \`$CORPUS\`, config \`$CONFIG\`, $(nproc) CPU cores, wrk 4 threads, 30 s per level"
  echo
  echo '```'
  for CONNECTIONS in 1 4 16; do
    echo "## $CONNECTIONS connection(s)"
    wrk -t "$(( CONNECTIONS < 4 ? CONNECTIONS : 4 ))" -c "$CONNECTIONS" -d 30s --latency \
      -s bench/serving/search_queries.lua "http://127.0.0.1:$PORT" | grep -E "Requests/sec|Latency|50%|99%|requests in|Non-2xx"
  done
  echo '```'
} | tee bench/results/serve.md
