#!/usr/bin/env bash
# tools/test.sh: the whole test suite, in named stages, each under a timeout,
# with a timing table at the end. It first runs tools/setup.sh (idempotent),
# so it works on a clean clone. .ci/run calls exactly this.
#
#   bash tools/test.sh                 # everything
#   FUZZTIME=30s bash tools/test.sh    # longer fuzzing
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
names=(); secs=(); results=()
failed=0

# stage NAME TIMEOUT_SECONDS CMD...: run one stage, record its time and result.
stage() {
    local name=$1 limit=$2; shift 2
    printf '\n=== stage %s (timeout %ss): %s\n' "$name" "$limit" "$*"
    local t0=$SECONDS rc
    timeout --kill-after=30 "$limit" "$@"
    rc=$?
    names+=("$name"); secs+=($((SECONDS - t0)))
    if [ $rc -eq 0 ]; then results+=(ok)
    elif [ $rc -eq 124 ]; then results+=("TIMEOUT"); failed=1
    else results+=("FAIL($rc)"); failed=1
    fi
    return 0
}

stage setup 1800 bash tools/setup.sh || true
stage vet 600 go vet ./...
stage test 2400 go test -race -count=1 -timeout 30m ./...
stage fuzz 900 bash tools/fuzz.sh
# gomps serve under load, abuse and faults on loopback (short form; make soak is the long one).
stage reliability 300 go run ./tools/reliability
# The goldens once per ISA ceiling at or below this CPU's (each run asserts
# the ISA it got), and the CPU backend on an emulated AVX2-only CPU, so the
# suite proves every x86-64 kind with AVX2 whatever CPU runs it.
stage isa-goldens 900 bash tools/isa-goldens.sh
stage qemu-avx2 900 bash tools/qemu-avx2.sh
if [ -f tools/beam-test.sh ]; then
    # One retry: Beam's Prism runner once (1 in 4 runs) reported a counter as 0
    # (TestMalformedLine/skip-bad=counted); the retry is printed, not hidden.
    stage beam 2700 bash -c 'bash tools/beam-test.sh || { echo "beam: FAILED once, retrying the stage"; bash tools/beam-test.sh; }'
fi
if [ -f tools/readme-examples.sh ]; then
    stage readme-examples 900 bash tools/readme-examples.sh
fi
if [ -f tools/check-metal.sh ]; then
    stage check-metal 900 bash tools/check-metal.sh
fi

printf '\n%-14s %8s  %s\n' stage seconds result
total=0
for i in "${!names[@]}"; do
    printf '%-14s %8s  %s\n' "${names[$i]}" "${secs[$i]}" "${results[$i]}"
    total=$((total + secs[i]))
done
printf '%-14s %8s\n' total "$total"
exit $failed
