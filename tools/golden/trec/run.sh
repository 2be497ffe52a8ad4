#!/usr/bin/env bash
# Regenerates gomps/trec/testdata/pytrec_eval.json: trec_eval figures of fixed runs computed by an
# implementation independent of gomps (pytrec_eval-terrier, the trec_eval 9 C code; ir_measures for the
# reciprocal rank cut at 10), which gomps/trec's TestIndependentFigures compares with Evaluate.
# Dev-only, never run by CI. The venv lives outside the repo: $GOMPS_EVAL_VENV, else
# ~/.cache/gomps/venv-eval. Reads ../shared/data/trec-dl (GOMPS_SHARED) and examples/.
#
#   bash tools/golden/trec/run.sh
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
here="$dir/.." # paths.sh wants a directory two levels below the repo
. "$dir/../../lib/paths.sh"
venv="${GOMPS_EVAL_VENV:-$cache/venv-eval}"
[ -d "$shared/data/trec-dl" ] || { echo "trec golden: $shared/data/trec-dl is missing (set GOMPS_SHARED)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
"$venv/bin/python" "$dir/figures.py" "$shared/data/trec-dl" "$repo/examples" \
	"bash tools/golden/trec/run.sh" >"$repo/gomps/trec/testdata/pytrec_eval.json.tmp"
mv "$repo/gomps/trec/testdata/pytrec_eval.json.tmp" "$repo/gomps/trec/testdata/pytrec_eval.json"
echo "trec golden: wrote gomps/trec/testdata/pytrec_eval.json" >&2
