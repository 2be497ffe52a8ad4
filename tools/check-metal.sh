#!/usr/bin/env bash
# tools/check-metal.sh: everything Linux can check of the Apple code
# (`make check-metal`; CI runs it). Two parts, one summary:
#
#   (a) only with SDK_DIR=<path to iPhoneOS16.5.sdk from theos/sdks>, kept
#       outside the repository (metal/README.md says how to get it):
#       clang -fsyntax-only of every .m in metal/ in macOS 13 mode with the
#       strict warning set; GOOS=darwin GOARCH=arm64 CGO_ENABLED=1 go vet and
#       go build of ./metal, go vet of ./cmd/gomps (`gomps kernels` on
#       Metal); and the planted selector typo
#       (metal/testdata/selector-typo.m) must make both fail.
#       Without SDK_DIR this part says that it skipped.
#   (b) always, no SDK: the joined shader library (as the backend compiles
#       it) compiles standalone; every .metal kernel compiled as C++ through
#       tools/metalshim and run against double-precision references (plain,
#       ThreadSanitizer and AddressSanitizer builds); two mutation checks (the
#       kernels without their reuse barrier must fail under TSan, without
#       their bounds check under ASan); the segmented forward pass
#       (metal/gomps-plan.c's plan for every kernel selection, executed with
#       the kernels through the shim and float64 graph segments, against an
#       independent float64 model; plain and ASan+UBSan builds) and its
#       mutation check (the plan without its no-alias rule must fail);
#       the backends' shared weight-file
#       reader (kernels/wfile, plain C) against valid and corrupted files
#       under ASan+UBSan;
#       its fp16 conversion against the compiler's _Float16.
#
# Exit status: 0 when nothing failed (skips are not failures).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHIM=tools/metalshim
KDIR=kernels/metal
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-metal.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

names=(); results=(); npass=0; nfail=0; nskip=0

record() { # record NAME pass|FAIL|SKIPPED [detail]
    names+=("$1"); results+=("$2${3:+ ($3)}")
    case $2 in pass) npass=$((npass + 1)) ;; FAIL) nfail=$((nfail + 1)) ;; *) nskip=$((nskip + 1)) ;; esac
    printf 'check-metal: %-34s %s\n' "$1" "$2${3:+ ($3)}"
}

# check NAME LOG CMD...: run CMD with its output in LOG; pass iff it exits 0.
check() {
    local name=$1 log=$2 t=$SECONDS; shift 2
    if "$@" >"$log" 2>&1; then record "$name" pass "$((SECONDS - t)) s"
    else
        tail -n 30 "$log" | sed 's/^/    | /'
        record "$name" FAIL "see output above"
    fi
}

# expect_fail NAME LOG PATTERN CMD...: the command must FAIL and print PATTERN
# (a mutation check: a planted bug must be caught, and caught for its reason).
expect_fail() {
    local name=$1 log=$2 pat=$3; shift 3
    if "$@" >"$log" 2>&1; then
        tail -n 10 "$log" | sed 's/^/    | /'
        record "$name" FAIL "the planted bug was NOT caught"
    elif grep -q -- "$pat" "$log"; then
        record "$name" pass "caught: $pat"
    else
        tail -n 20 "$log" | sed 's/^/    | /'
        record "$name" FAIL "failed, but without '$pat'"
    fi
}

# need PROGRAM DEBIAN_PACKAGE: install PROGRAM with apt-get if it is missing
# (idempotent), or explain what to install.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo=sudo
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
        echo "check-metal: installing $2 (for $1)"
        $sudo apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1
    fi
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "check-metal: $1 is missing and could not be installed; install the Debian package $2" >&2
    return 1
}

t0=$SECONDS

# ---------------------------------------------------------------- part (a)
part_a() {
    if [ -z "${SDK_DIR:-}" ]; then
        echo "check-metal: part (a) SKIPPED: SDK_DIR is not set, so the Objective-C type-check and the"
        echo "check-metal:   darwin cross-build of ./metal did not run (metal/README.md: how to set SDK_DIR)."
        record "(a) objc+cgo against SDK" SKIPPED "SDK_DIR not set"
        return
    fi
    bash tools/metalshim/check-objc.sh "$WORK/objc"
    local rc=$?
    if [ $rc -eq 0 ]; then record "(a) objc+cgo against SDK" pass
    else record "(a) objc+cgo against SDK" FAIL "tools/metalshim/check-objc.sh rc=$rc"
    fi
}

# ---------------------------------------------------------------- part (b)
CXXFLAGS=(-std=c++20 -Wall -Wextra -Wno-attributes -Werror -I"$SHIM/include" -pthread -x c++)

build_driver() { # build_driver OUT KERNEL_DIR EXTRA_FLAGS...
    local out=$1 kdir=$2; shift 2
    g++ "${CXXFLAGS[@]}" -I"$kdir" "$@" "$SHIM/driver.cpp" -o "$out"
}

# mutant DIR PATTERN FILE: a copy of the kernels with the lines marked
# PATTERN deleted from FILE; fails if no line was deleted (a stale marker
# would make the mutation check pass vacuously).
mutant() {
    local dir=$1 pat=$2 file=$3
    mkdir -p "$dir" && cp "$KDIR"/*.h "$KDIR"/*.metal "$dir"/ || return 1
    local before after
    before=$(grep -c -- "$pat" "$dir/$file")
    sed -i "/$pat/d" "$dir/$file"
    after=$(grep -c -- "$pat" "$dir/$file")
    if [ "$before" -eq 0 ] || [ "$after" -ne 0 ]; then
        echo "check-metal: marker '$pat' not found in $KDIR/$file" >&2
        return 1
    fi
}

part_b() {
    if ! need g++ g++; then
        record "(b) metalshim" FAIL "g++ missing"
        return
    fi
    local b=$WORK/b
    mkdir -p "$b"
    run_plain() { build_driver "$b/plain" "$KDIR" -O1 && "$b/plain"; }
    run_tsan() { build_driver "$b/tsan" "$KDIR" -O0 -g -fsanitize=thread && TSAN_OPTIONS=halt_on_error=1 "$b/tsan" --small; }
    run_asan() {
        build_driver "$b/asan" "$KDIR" -O0 -g -fsanitize=address,undefined -fno-sanitize-recover=all &&
            "$b/asan" --small
    }
    # the library exactly as the backend compiles it (kernels/metal Source():
    # files joined, local includes removed) must stand alone
    run_joined() {
        go run ./tools/metalshim/dumpsrc >"$b/joined.metal" &&
            g++ "${CXXFLAGS[@]}" -fsyntax-only "$b/joined.metal"
    }
    check "(b) joined library source compiles" "$b/joined.log" run_joined
    check "(b) kernels vs reference" "$b/plain.log" run_plain
    grep -E 'PASS|FAIL' "$b/plain.log" | sed 's/^/    /'
    check "(b) kernels under TSan (<=8 rows)" "$b/tsan.log" run_tsan
    check "(b) kernels under ASan+UBSan (<=8 rows)" "$b/asan.log" run_asan

    if mutant "$b/nobarrier" 'gomps:reuse-barrier' gomps-shader.h >"$b/mut1.log" 2>&1 &&
        build_driver "$b/mut-tsan" "$b/nobarrier" -O0 -g -fsanitize=thread >>"$b/mut1.log" 2>&1; then
        expect_fail "(b) mutant: no barrier -> TSan" "$b/mut1.run.log" "ThreadSanitizer: data race" \
            "$b/mut-tsan" --small --only=layer_norm
    else
        cat "$b/mut1.log"; record "(b) mutant: no barrier -> TSan" FAIL "could not build the mutant"
    fi
    if mutant "$b/nobounds" 'gomps:bounds-check' bias-gelu.metal >"$b/mut2.log" 2>&1 &&
        build_driver "$b/mut-asan" "$b/nobounds" -O0 -g -fsanitize=address >>"$b/mut2.log" 2>&1; then
        expect_fail "(b) mutant: no bounds check -> ASan" "$b/mut2.run.log" "AddressSanitizer: heap-buffer-overflow" \
            "$b/mut-asan" --small --only=bias_gelu
    else
        cat "$b/mut2.log"; record "(b) mutant: no bounds check -> ASan" FAIL "could not build the mutant"
    fi

    # the segmented forward: metal/gomps-plan.c (as the backend compiles it)
    # plus tools/metalshim/layer.cpp; build_layer OUT PLAN_DIR FLAGS...
    build_layer() {
        local out=$1 pdir=$2; shift 2
        gcc -std=c11 -Wall -Wextra -Werror -Ikernels -I"$KDIR" -I"$pdir" "$@" -x c -c "$pdir/gomps-plan.c" -o "$out.plan.o" &&
            g++ "${CXXFLAGS[@]}" -I"$KDIR" -I"$pdir" -Ikernels "$@" "$SHIM/layer.cpp" -x none "$out.plan.o" -o "$out"
    }
    run_layer() { build_layer "$b/layer" metal -O1 && "$b/layer"; }
    run_layer_asan() {
        build_layer "$b/layer-asan" metal -O0 -g -fsanitize=address,undefined -fno-sanitize-recover=all &&
            "$b/layer-asan" --small
    }
    check "(b) segmented forward vs reference" "$b/layer.log" run_layer
    grep -E '^forward.*(PASS|FAIL)' "$b/layer.log" | sed 's/^/    /'
    grep -E '^layer:' "$b/layer.log" | sed 's/^/    /'
    check "(b) segmented forward under ASan+UBSan" "$b/layer-asan.log" run_layer_asan
    # mutant: the plan may put a segment's result in the buffer of an input
    # it still reads; the forward (output buffers poisoned when a segment
    # starts) must come out NaN
    if mkdir -p "$b/noalias" && cp metal/gomps-plan.[ch] "$b/noalias"/ &&
        [ "$(grep -c 'gomps:plan-no-alias' "$b/noalias/gomps-plan.c")" -gt 0 ] &&
        sed -i '/gomps:plan-no-alias/d' "$b/noalias/gomps-plan.c" &&
        build_layer "$b/mut-layer" "$b/noalias" -O1 >"$b/mut3.log" 2>&1; then
        expect_fail "(b) mutant: plan aliasing -> forward" "$b/mut3.run.log" "max|d|=nan" "$b/mut-layer"
    else
        cat "$b/mut3.log" 2>/dev/null; record "(b) mutant: plan aliasing -> forward" FAIL "could not build the mutant (marker gomps:plan-no-alias missing?)"
    fi

    if [ -f "$SHIM/wfile-test.c" ]; then
        # files from the Go writer (weights.Convert) too: tiny model, V=64 H=32 L=2
        run_wfile() {
            go run ./tools/metalshim/mkwfile "$b/tiny-f32.gomps" f32 &&
                go run ./tools/metalshim/mkwfile "$b/tiny-f16.gomps" f16 &&
                gcc -std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
                    -Ikernels "$SHIM/wfile-test.c" kernels/wfile/gomps-wfile.c -o "$b/wfile" -lm -pthread &&
                "$b/wfile" --expect "$b/tiny-f32.gomps" f32 64 32 2 --expect "$b/tiny-f16.gomps" f16 64 32 2
        }
        check "(b) weight-file reader (ASan+UBSan)" "$b/wfile.log" run_wfile
        grep -E 'PASS|FAIL' "$b/wfile.log" | sed 's/^/    /'
    fi
    if [ -f "$SHIM/half-test.c" ]; then
        run_half() {
            gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Imetal "$SHIM/half-test.c" metal/gomps-half.c -o "$b/half" -lm &&
                "$b/half"
        }
        check "(b) fp16 conversion vs _Float16" "$b/half.log" run_half
        grep -E 'conversions' "$b/half.log" | sed 's/^/    /'
    fi
}

part_a
part_b

echo
echo "check-metal summary ($((SECONDS - t0)) s):"
for i in "${!names[@]}"; do printf '  %-38s %s\n' "${names[$i]}" "${results[$i]}"; done
printf '  passed %d, failed %d, skipped %d\n' "$npass" "$nfail" "$nskip"
[ "$nfail" -eq 0 ]
