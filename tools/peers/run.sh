#!/usr/bin/env bash
# Peer benchmark: PyTorch and ONNX Runtime on the test model, the DL19 pairs and gomps' batch plan,
# side by side with gomps' raw forward. Dev-only: needs PyPI once, ../shared and the golden venv; never
# run by CI. Arguments go to peers.py (see `tools/peers/run.sh --help`).
#
# The venv (outside the repo, default ~/.cache/gomps/venv-peers) reuses the golden venv's PyTorch and
# transformers through a .pth file (tools/golden/run.sh creates that venv) and installs only
# requirements.txt into itself; it is reinstalled only when requirements.txt changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../lib/paths.sh"
venv="${GOMPS_PEERS_VENV:-$cache/venv-peers}"

log() { echo "peers: $*" >&2; }
die() { echo "peers: $*" >&2; exit 1; }

[ -x "$golden/bin/python" ] || die "golden venv not found at $golden (run tools/golden/run.sh first)"
[ -d "$shared/data/trec-dl" ] || die "shared data not found at $shared/data/trec-dl (set GOMPS_SHARED)"

if [ ! -x "$venv/bin/python" ]; then
	log "creating venv $venv"
	command -v "$python" >/dev/null || python=python3
	"$python" -m venv "$venv"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
gsite="$("$golden/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$gsite" >"$site/gomps-golden.pth"

stamp="$venv/.gomps-requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	log "installing pinned requirements into $venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
	echo "$want" >"$stamp"
else
	log "venv up to date: $venv"
fi

HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 \
	exec "$venv/bin/python" "$here/peers.py" --repo "$repo" --shared "$shared" --cache "$cache" "$@"
