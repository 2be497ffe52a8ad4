#!/usr/bin/env bash
# bf16 accuracy on the DL19 BM25 lists: every DL19 query's top 10 under bf16 against its
# top 10 under fp32, for gomps (`gomps score --precision bf16|f32 --rank`) and, as the control, PyTorch
# (autocast bf16 vs fp32, tools/peers/dl19_scores.py), plus max / mean |delta logit| over the 4,300 pairs.
# Prints one table (tools/perf/overlap.py). Dev-only: needs ../shared, the real-shape test model
# (tools/setup.sh) and the golden venv (tools/golden/run.sh); never run by CI.
#
#   tools/perf/bf16-overlap.sh [--out DIR] [--threads N] [--reuse-torch]
#
# --out DIR       where the score files go (default /tmp/gomps-bf16-overlap; outside the repo: they hold text)
# --threads N     native / PyTorch threads (default 2)
# --reuse-torch   keep DIR/torch.tsv from an earlier run (PyTorch takes minutes; its logits do not change)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../lib/paths.sh"
data="$dl19"
out=/tmp/gomps-bf16-overlap
threads=2
reuse=0

die() { echo "bf16-overlap: $*" >&2; exit 1; }
log() { echo "bf16-overlap: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out="$2"; shift 2 ;;
	--threads) threads="$2"; shift 2 ;;
	--reuse-torch) reuse=1; shift ;;
	-h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

[ -f "$data" ] || die "$data not found (set GOMPS_SHARED)"
[ -f "$model" ] || die "$model not found (run tools/setup.sh)"
[ -x "$golden/bin/python" ] || die "golden venv not found at $golden (run tools/golden/run.sh)"
mkdir -p "$out"

log "building bin/gomps"
(cd "$repo" && go build -o bin/gomps ./cmd/gomps)

for p in f32 bf16; do
	log "gomps score --precision $p"
	"$repo/bin/gomps" score --model "$model" --input "$data" --precision "$p" --threads "$threads" \
		--rank --quiet --output "$out/gomps-$p.jsonl"
done

if [ "$reuse" = 1 ] && [ -s "$out/torch.tsv" ]; then
	log "reusing $out/torch.tsv"
else
	log "PyTorch fp32 and bf16 autocast ($threads threads; minutes)"
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
		"$golden/bin/python" "$repo/tools/peers/dl19_scores.py" --repo "$repo" --shared "$shared" \
		--cache "$cache" --threads "$threads" --out "$out/torch.tsv"
fi

echo "bf16 vs fp32 on DL19, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# A snapshot made by `git archive` (docs/cpu-fast-path.md) carries its commit in .commit.
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || cat "$repo/.commit" 2>/dev/null || echo "(unknown commit)")"
echo "model $model; gomps $commit, $threads threads"
python3 "$here/overlap.py" "$out" --json "$out/overlap.json"
