#!/usr/bin/env bash
# tools/qemu-avx2.sh: the CPU backend on an emulated AVX2-only CPU (an Intel
# Haswell: AVX2 and FMA, no AVX-512), so that the AVX2 code paths of oneDNN
# and of our kernels really execute whatever CPU runs CI. Runs the kernels/cpu
# tests and the tiny model's goldens under qemu-x86_64 -cpu Haswell (Debian's
# qemu-user, installed by tools/setup.sh); each asserts it got the avx2 ISA.
# Child processes some tests start run natively (qemu-user does not follow
# exec here); they cap themselves with ONEDNN_MAX_CPU_ISA. Last, on an
# emulated Sandy Bridge (AVX, no AVX2), every model load must be refused.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v qemu-x86_64 >/dev/null || { echo "qemu-avx2: qemu-x86_64 not found (apt-get install qemu-user)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/cpu.test" ./kernels/cpu
go test -c -o "$bin/gomps.test" ./gomps
# qemu lists the host features TCG cannot emulate on every start: noise here.
quiet() { grep -v "TCG doesn't support requested feature" || true; }
run() {
    local dir=$1 t0=$SECONDS; shift
    (cd "$dir" && GOMPS_EXPECT_ISA=avx2 qemu-x86_64 -cpu Haswell "$@" 2> >(quiet >&2))
    echo "qemu-avx2: $dir: ok in $((SECONDS - t0))s"
}
run kernels/cpu "$bin/cpu.test" -test.count=1
run gomps "$bin/gomps.test" -test.count=1 -test.run 'TestBackendISA|TestGoldenTiny$'
(cd kernels/cpu && GOMPS_EXPECT_REFUSAL="this CPU (avx) lacks AVX2 and FMA" \
    qemu-x86_64 -cpu SandyBridge "$bin/cpu.test" -test.count=1 -test.run '^TestISAExpectations$' 2> >(quiet >&2))
echo "qemu-avx2: Sandy Bridge (no AVX2): every load refused"
