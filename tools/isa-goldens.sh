#!/usr/bin/env bash
# tools/isa-goldens.sh: the goldens once per ISA ceiling at or below this CPU's
# (ONEDNN_MAX_CPU_ISA = AVX2, AVX2_VNNI, AVX512_CORE, AVX512_CORE_VNNI,
# AVX512_CORE_BF16, AVX512_CORE_AMX, as far as the CPU reaches). Each run first
# asserts the effective ISA it got (GOMPS_EXPECT_ISA, checked by the tests),
# then checks the fp32 goldens of both models and the bf16 bounds (or the bf16
# refusal) that isaexpect's table gives for that ISA. Prints each level's time.
#
#   bash tools/isa-goldens.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

levels=(avx2 avx2_vnni avx512_core avx512_core_vnni avx512_core_bf16 avx512_core_amx)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/gomps" ./cmd/gomps
go test -c -o "$bin/gomps.test" ./gomps

# isa CAP: the effective ISA gomps reports under ONEDNN_MAX_CPU_ISA=CAP ("" = uncapped).
isa() { ONEDNN_MAX_CPU_ISA=$1 "$bin/gomps" version --json | sed -n 's/.*"isa":"\([a-z0-9_]*\)".*/\1/p'; }

top=$(isa "")
echo "isa-goldens: this CPU's ISA: $top ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
failed=0
for level in "${levels[@]}"; do
    cap=${level^^}
    got=$(isa "$cap")
    if [ "$level" = avx2_vnni ] && [ "$got" = avx2 ]; then
        echo "isa-goldens: $cap: this CPU has no AVX-VNNI (the cap gives avx2); level not reachable here"
    else
        t0=$SECONDS
        # run from the package directory, as go test does (testdata paths)
        if (cd gomps && ONEDNN_MAX_CPU_ISA=$cap GOMPS_EXPECT_ISA=$level "$bin/gomps.test" -test.count=1 \
            -test.run 'TestBackendISA|TestGolden(Tiny|TestModel|BF16)$'); then
            echo "isa-goldens: $cap: ok in $((SECONDS - t0))s"
        else
            echo "isa-goldens: $cap: FAILED"
            failed=1
        fi
    fi
    [ "$level" = "$top" ] && break
done
exit $failed
