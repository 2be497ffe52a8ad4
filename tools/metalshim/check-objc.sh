#!/usr/bin/env bash
# tools/metalshim/check-objc.sh WORKDIR: part (a) of tools/check-metal.sh.
# Needs SDK_DIR = an iPhoneOS16.5.sdk (theos/sdks) outside the repository.
#
#   1. clang -fsyntax-only of every metal/*.m (and the C files, with the shared
#      weights reader kernels/wfile) in macOS 13
#      mode (-target arm64-apple-macos13.0, the deployment target) with the
#      strict warning set, and in iOS 16 mode as a second opinion;
#   2. GOOS=darwin GOARCH=arm64 CGO_ENABLED=1 go vet and go build of ./metal
#      (its tests run through the binding) and go vet of ./kernels/native
#      (the binding, with the Metal table) with CC = a clang wrapper over the
#      SDK (cgo compiles the .m files into arm64 Mach-O objects; only a final
#      link would need ld64);
#      then the clang static analyzer over the same files (no findings);
#   2b. GOOS=darwin GOARCH=arm64 CGO_ENABLED=1 go vet ./cmd/gomps (the CLI's
#      Metal files, kernels_darwin.go), with a mach_vm.h stand-in for a
#      dependency (tools/metalshim/darwin-include/mach/mach_vm.h says why);
#   3. the planted selector typo (metal/testdata/selector-typo.m) must make
#      both the type-check and the go build fail, for that reason.
# Prints one line per step; exits non-zero if any step failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
WORK=${1:?usage: check-objc.sh WORKDIR}
mkdir -p "$WORK"
fails=0
say() { printf 'check-objc: %-46s %s\n' "$1" "$2"; }
bad() { say "$1" "FAIL${2:+ ($2)}"; fails=$((fails + 1)); }

if [ ! -d "$SDK_DIR/System/Library/Frameworks/MetalPerformanceShadersGraph.framework/Headers" ]; then
    bad "SDK_DIR" "$SDK_DIR has no MetalPerformanceShadersGraph headers; want theos/sdks iPhoneOS16.5.sdk"
    exit 1
fi
# clang: any of clang-16/15/14 or clang; install Debian's clang if none.
CLANG=""
for c in clang-16 clang-15 clang clang-14; do command -v "$c" >/dev/null 2>&1 && { CLANG=$c; break; }; done
if [ -z "$CLANG" ]; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    if command -v apt-get >/dev/null 2>&1; then
        echo "check-objc: installing clang (Debian)"
        $sudo apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null 2>&1
    fi
    command -v clang >/dev/null 2>&1 && CLANG=clang
fi
if [ -z "$CLANG" ]; then
    bad "clang" "not installed and apt-get could not install it; install clang"
    exit 1
fi
say "compiler" "$($CLANG --version | head -n1)"

MAC=(-target arm64-apple-macos13.0 -isysroot "$SDK_DIR" -Wno-incompatible-sysroot -DOS_OBJECT_HAVE_OBJC_SUPPORT=1)
IOS=(-target arm64-apple-ios16.0 -isysroot "$SDK_DIR")
STRICT=(-Wall -Wextra -Wno-unused-parameter -Werror -Wundeclared-selector -Wunguarded-availability-new)
INC=(-Ikernels -Ikernels/metal -Imetal)

objc() { # objc MODE FILE -> clang -fsyntax-only
    local mode=$1 f=$2
    local -n tgt=$mode
    "$CLANG" -fsyntax-only -fobjc-arc -x objective-c "${tgt[@]}" "${INC[@]}" "${STRICT[@]}" "$f"
}

shopt -s nullglob
sources=(metal/*.m)
[ ${#sources[@]} -gt 0 ] || bad "sources" "no metal/*.m found"
for f in "${sources[@]}"; do
    for mode in MAC IOS; do
        if objc $mode "$f" >"$WORK/objc.log" 2>&1; then say "syntax $mode $f" ok
        else sed 's/^/    | /' "$WORK/objc.log" | head -n 20; bad "syntax $mode $f"
        fi
    done
done
for f in metal/*.c kernels/wfile/*.c; do
    if "$CLANG" -fsyntax-only -x c -std=c11 "${MAC[@]}" "${INC[@]}" "${STRICT[@]}" "$f" >"$WORK/c.log" 2>&1; then
        say "syntax MAC $f" ok
    else sed 's/^/    | /' "$WORK/c.log" | head -n 20; bad "syntax MAC $f"
    fi
done

# the clang static analyzer (ARC, nullability, leaks of C memory, dead stores):
# any finding fails
for f in "${sources[@]}" metal/*.c kernels/wfile/*.c; do
    lang=(-x c -std=c11)
    [ "${f##*.}" = m ] && lang=(-fobjc-arc -x objective-c)
    if "$CLANG" --analyze -o /dev/null "${lang[@]}" "${MAC[@]}" "${INC[@]}" "$f" >"$WORK/an.log" 2>&1 &&
        ! grep -q "warning:" "$WORK/an.log"; then
        say "analyzer $f" ok
    else sed 's/^/    | /' "$WORK/an.log" | head -n 20; bad "analyzer $f"
    fi
done

TYPO_PAT="no visible @interface for 'MPSGraph' declares the selector 'matrixMultiplyWithPrimaryTensor"
if objc MAC metal/testdata/selector-typo.m >"$WORK/typo.log" 2>&1; then
    bad "fixture: typo rejected by syntax check" "the planted typo was ACCEPTED"
elif grep -q "$TYPO_PAT" "$WORK/typo.log"; then
    say "fixture: typo rejected by syntax check" "ok (caught)"
else
    sed 's/^/    | /' "$WORK/typo.log" | head -n 10; bad "fixture: typo rejected by syntax check" "failed for another reason"
fi

# cgo cross-build: CC wraps clang over the SDK
cat >"$WORK/darwin-cc" <<CC
#!/bin/sh
exec $CLANG ${MAC[*]} "\$@"
CC
chmod +x "$WORK/darwin-cc"
gox() { GOOS=darwin GOARCH=arm64 CGO_ENABLED=1 CC="$WORK/darwin-cc" go "$@"; }
if gox vet ./metal >"$WORK/vet.log" 2>&1; then say "go vet ./metal (darwin/arm64, cgo)" ok
else sed 's/^/    | /' "$WORK/vet.log" | head -n 20; bad "go vet ./metal (darwin/arm64, cgo)"
fi
if gox build ./metal >"$WORK/build.log" 2>&1; then say "go build ./metal (darwin/arm64, cgo)" ok
else sed 's/^/    | /' "$WORK/build.log" | head -n 20; bad "go build ./metal (darwin/arm64, cgo)"
fi
# the one binding (kernels/native) with its darwin backend table
# (gomps_backend_metal) and the backend's tests over it
if gox vet ./kernels/native >"$WORK/vet-native.log" 2>&1; then say "go vet ./kernels/native (darwin/arm64, cgo)" ok
else sed 's/^/    | /' "$WORK/vet-native.log" | head -n 20; bad "go vet ./kernels/native (darwin/arm64, cgo)"
fi

# the CLI's darwin files (cmd/gomps/kernels_darwin.go: `gomps kernels` on
# Metal) type-checked against the real metal package; the mach_vm.h stand-in
# (tools/metalshim/darwin-include) lets a dependency's darwin cgo file
# (prometheus/client_golang's process collector) compile under the iOS SDK
cat >"$WORK/darwin-cc-cmd" <<CC
#!/bin/sh
exec $CLANG ${MAC[*]} -I$ROOT/tools/metalshim/darwin-include "\$@"
CC
chmod +x "$WORK/darwin-cc-cmd"
if GOOS=darwin GOARCH=arm64 CGO_ENABLED=1 CC="$WORK/darwin-cc-cmd" go vet ./cmd/gomps >"$WORK/vet-cmd.log" 2>&1; then
    say "go vet ./cmd/gomps (darwin/arm64, cgo)" ok
else sed 's/^/    | /' "$WORK/vet-cmd.log" | head -n 20; bad "go vet ./cmd/gomps (darwin/arm64, cgo)"
fi

# the same build with the fixture added, in a scratch copy of the module
SCR="$WORK/typo-module"
rm -rf "$SCR" && mkdir -p "$SCR"
cp go.mod go.sum "$SCR"/ && cp -r kernels metal "$SCR"/ && cp metal/testdata/selector-typo.m "$SCR/metal/zz-selector-typo.m"
if (cd "$SCR" && gox build ./metal) >"$WORK/typo-build.log" 2>&1; then
    bad "fixture: typo fails go build ./metal" "the planted typo was ACCEPTED"
elif grep -q "$TYPO_PAT" "$WORK/typo-build.log"; then
    say "fixture: typo fails go build ./metal" "ok (caught)"
else
    sed 's/^/    | /' "$WORK/typo-build.log" | head -n 10; bad "fixture: typo fails go build ./metal" "failed for another reason"
fi
rm -rf "$SCR"
exit $((fails > 0))
