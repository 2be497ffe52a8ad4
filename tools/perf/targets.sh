#!/usr/bin/env bash
# The CPU throughput targets on the standard workload (64 pairs per request, 32 closed-loop callers,
# DL19 BM25 pairs), median of 3 runs, each bench run preceded by `gomps kernels` so the GEMM rate of the
# same moment stands beside it (a run whose GEMM rate is under 70% of cpu-ceilings.md is flagged noisy).
# Dev-only; never run by CI. Prints one table at the end (tools/perf/targets_table.py) and keeps every
# raw output in --out.
#
#   tools/perf/targets.sh [--precisions f32,bf16] [--instances 1x2,2x1] [--runs 3] [--requests 256]
#                         [--warmup-requests 32] [--out DIR] [--workload FILE] [--model FILE]
#
# --precisions LIST      f32 and/or bf16 (default f32,bf16)
# --instances LIST       IxT = I instances of T threads each (bench --instances I --threads I*T);
#                        default 1x2,2x1 (the 2-core machine either way)
# --runs N               bench runs per configuration (default 3; the table shows their median)
# --requests N           measured requests per bench run (default 256 = 16,384 pairs)
# --warmup-requests N    warm-up requests per bench run, not measured (default 32)
# --kernel-threads N     threads of the `gomps kernels` GEMM check (default 2, as cpu-ceilings.md)
# --out DIR              raw outputs (default /tmp/gomps-targets-<UTC time>; outside the repo)
# --workload FILE        default ../shared/data/trec-dl/rerank.dl19.bm25-top100.jsonl
# --model FILE           default ~/.cache/gomps/models/test-minilm-l6.gomps
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../lib/paths.sh"
precisions=f32,bf16
instances=1x2,2x1
runs=3
requests=256
warmup=32
kthreads=2
out="/tmp/gomps-targets-$(date -u +%Y%m%dT%H%M%S)"
workload="$dl19"

die() { echo "targets: $*" >&2; exit 1; }
log() { echo "targets: $(date -u +%H:%M:%S) $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--precisions) precisions="$2"; shift 2 ;;
	--instances) instances="$2"; shift 2 ;;
	--runs) runs="$2"; shift 2 ;;
	--requests) requests="$2"; shift 2 ;;
	--warmup-requests) warmup="$2"; shift 2 ;;
	--kernel-threads) kthreads="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	--workload) workload="$2"; shift 2 ;;
	--model) model="$2"; shift 2 ;;
	-h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

[ -f "$workload" ] || die "workload $workload not found (set GOMPS_SHARED or --workload)"
[ -f "$model" ] || die "model $model not found (run tools/setup.sh)"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs $runs: want a positive number"
mkdir -p "$out"
manifest="$out/manifest.tsv"
printf 'precision\tinstances\tthreads_each\trun\tkernels\tbench_stdout\treport\n' >"$manifest"

log "building bin/gomps"
(cd "$repo" && go build -o bin/gomps ./cmd/gomps)
gomps="$repo/bin/gomps"

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
	if git -C "$repo" rev-parse HEAD >/dev/null 2>&1; then
		echo "commit: $(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet HEAD -- kernels gomps cmd || echo ' + uncommitted changes in kernels/gomps/cmd')"
	else # a snapshot made by `git archive` (docs/cpu-fast-path.md) carries its commit in .commit
		echo "commit: $(cat "$repo/.commit" 2>/dev/null || echo "unknown: $repo is not a git checkout")"
	fi
	echo "cpus: $(nproc); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "model: $model"
	echo "workload: $workload; 64 pairs/request, 32 callers, $requests requests measured after $warmup warm-up"
	if [ -x /tmp/cpu-peak/peak ]; then
		echo "clock (OMP_NUM_THREADS=2 /tmp/cpu-peak/peak):"
		OMP_NUM_THREADS=2 /tmp/cpu-peak/peak 2>&1 | grep -i -m1 'ghz' || true
	fi
} | tee "$out/machine.txt" >&2

IFS=, read -r -a precs <<<"$precisions"
IFS=, read -r -a insts <<<"$instances"
for p in "${precs[@]}"; do
	case "$p" in f32 | bf16) ;; *) die "--precisions: $p is not f32 or bf16" ;; esac
done
for it in "${insts[@]}"; do
	[[ "$it" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "--instances: $it is not IxT"
done
# Run r of every configuration before run r+1 of any, so a slow window of the shared machine is spread
# over the configurations instead of spoiling all runs of one.
for ((r = 1; r <= runs; r++)); do
	for p in "${precs[@]}"; do
		for it in "${insts[@]}"; do
			i="${it%x*}" t="${it#*x}"
			tag="$p-${i}x$t-run$r"
			log "$tag: gomps kernels --seq 128 --threads $kthreads --precision $p"
			"$gomps" kernels --seq 128 --threads "$kthreads" --precision "$p" --json >"$out/$tag-kernels.json"
			log "$tag: gomps bench --precision $p --instances $i --threads $((i * t)) --requests $requests"
			# bench exits non-zero when its reconciliation check fails; keep the run, the table says so.
			"$gomps" bench --model "$model" --workload "$workload" --batch-sizes 64 --concurrency 32 \
				--precision "$p" --instances "$i" --threads "$((i * t))" --requests "$requests" \
				--warmup-requests "$warmup" --output "$out/$tag.md" --plots-dir - \
				>"$out/$tag-bench.txt" 2>"$out/$tag-bench.err" ||
				log "$tag: bench exited $? (see $out/$tag-bench.err)"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$i" "$t" "$r" "$tag-kernels.json" "$tag-bench.txt" \
				"$tag.md" >>"$manifest"
		done
	done
done

{
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ -x /tmp/cpu-peak/peak ]; then
		echo "clock at end (OMP_NUM_THREADS=2 /tmp/cpu-peak/peak):"
		OMP_NUM_THREADS=2 /tmp/cpu-peak/peak 2>&1 | grep -i -m1 'ghz' || true
	fi
} | tee -a "$out/machine.txt" >&2
python3 "$here/targets_table.py" "$out" | tee "$out/table.md"
