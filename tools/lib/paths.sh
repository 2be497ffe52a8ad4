# Sourced by the dev scripts (tools/golden, tools/perf, tools/peers): where the repo, ../shared, the
# cache, the golden venv, the real-shape test model and the DL19 rerank lists are. Each can be moved with
# its environment variable. Needs `here` (the sourcing script's directory, two levels below the repo).
repo="$(cd "$here/../.." && pwd)"
shared="${GOMPS_SHARED:-$repo/../shared}"
cache="${GOMPS_CACHE:-$HOME/.cache/gomps}"
golden="${GOMPS_GOLDEN_VENV:-$cache/venv-golden}"
model="${GOMPS_TEST_MODEL:-$cache/models/test-minilm-l6.gomps}"
dl19="$shared/data/trec-dl/rerank.dl19.bm25-top100.jsonl"
python="${PYTHON:-python3.11}"
