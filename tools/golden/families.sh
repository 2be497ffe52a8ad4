#!/usr/bin/env bash
# Regenerate the architecture-family test models and their PyTorch goldens (`make golden-families`):
# gomps/testdata/families/ and gomps/testdata/golden/families/. Dev-only: needs the golden venv (PyPI) and
# ../shared; never run by CI.
#
#   bash tools/golden/families.sh                     # the committed test models and goldens
#   bash tools/golden/families.sh --xlmr-base DIR     # a random XLM-RoBERTa base-shape model in DIR (outside
#                                                     # the repo, ~1.1 GB, never committed) for speed runs
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../lib/paths.sh"

log() { echo "families: $*" >&2; }
die() { echo "families: $*" >&2; exit 1; }

[ -d "$shared/data/trec-dl" ] || die "shared data not found at $shared/data/trec-dl (set GOMPS_SHARED)"

. "$here/venv.sh"
golden_venv

# Offline, CPU only, one thread for the tokenizer trainers (their output is then byte-identical across runs).
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false \
	RAYON_NUM_THREADS=1 RAYON_RS_NUM_CPUS=1 \
	"$golden/bin/python" "$here/families.py" --repo "$repo" --shared "$shared" "$@"
[ $# -gt 0 ] || log "done; review with: git -C $repo status gomps/testdata"
