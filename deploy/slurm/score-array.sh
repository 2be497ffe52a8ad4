#!/usr/bin/env bash
# deploy/slurm/score-array.sh: score one input on a Slurm job array, one
# shard of the queries per array task, with `gomps score --shard i/n`.
#
# NOT RUN: no Slurm cluster exists where gomps is developed. It follows
# Slurm's documented array variables; the --shard split it relies on is
# tested (gomps/shard, and the union test of the score command).
#
#   INPUT=/shared/pairs.jsonl OUT=/shared/scores MODEL=/shared/models/ms-marco-MiniLM-L-6-v2 \
#     sbatch --array=0-7 deploy/slurm/score-array.sh
#   # after all tasks end (or: sbatch --dependency=afterok:<jobid> ...):
#   cat /shared/scores/scores.*-of-8.jsonl > /shared/scores/all.jsonl
#
# Shards are numbered from 0, so the array must be 0-(N-1); N is taken
# from Slurm. Each task writes its own file through a temporary file that
# is renamed at the end, so a failed or requeued task never leaves a
# partial shard. INPUT, OUT and MODEL must be on a filesystem every node
# sees. The shards' union is exactly the unsharded output; concatenated
# in shard order, it lists the queries grouped, shard by shard.
#SBATCH --job-name=gomps-score
#SBATCH --cpus-per-task=8
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --output=gomps-score-%A_%a.log
set -euo pipefail

: "${INPUT:?set INPUT to the pairs file (tsv, jsonl or a TREC run)}"
: "${OUT:?set OUT to the output directory}"
: "${MODEL:?set MODEL to a native .gomps file or a Hugging Face dir}"
: "${SLURM_ARRAY_TASK_ID:?submit with sbatch --array=0-N}"
if [ "${SLURM_ARRAY_TASK_MIN:-0}" != 0 ]; then
    echo "score-array: the array must start at 0 (shards are numbered from 0)" >&2
    exit 2
fi
N=${SLURM_ARRAY_TASK_COUNT:?Slurm did not set SLURM_ARRAY_TASK_COUNT}
I=$SLURM_ARRAY_TASK_ID
EXT=${INPUT##*.}
mkdir -p "$OUT"

exec gomps score \
    --model "$MODEL" \
    --input "$INPUT" \
    --shard "$I/$N" \
    --threads "${SLURM_CPUS_PER_TASK:-1}" \
    --output "$OUT/scores.$I-of-$N.$EXT"
