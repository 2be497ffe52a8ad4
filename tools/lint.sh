#!/usr/bin/env bash
# tools/lint.sh: the checks of `make lint` beyond go vet and gofmt, each tool
# pinned by version and run with `go run pkg@version` (nothing to install):
#
#   complexity  gocyclo over the non-test Go files: a function may not pass
#               CYCLO_MAX, except those in tools/lint/complexity-baseline.txt,
#               which may not grow past their recorded value
#   clones      dupl over the non-test Go files: no clone of DUPL_TOKENS
#               tokens or more between two files (or within one) unless the
#               pair is in tools/lint/clones-baseline.txt
#   deadcode    no function unreachable from every main and test
#
# A baseline only shrinks: when a listed function falls to CYCLO_MAX or a
# listed pair goes away, the script says so; remove the line.
#
#   bash tools/lint.sh            # all three
#   bash tools/lint.sh clones     # one of them
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GOCYCLO=github.com/fzipp/gocyclo/cmd/gocyclo@v0.6.0
DUPL=github.com/mibk/dupl@v1.1.0
DEADCODE=golang.org/x/tools/cmd/deadcode@v0.53.0
CYCLO_MAX=15
DUPL_TOKENS=50
GO=${GO:-go}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
errs=$scratch/stderr pairs=$scratch/pairs

# The module's non-test Go files, tracked or new (ignored files left out).
go_files() { git ls-files -co --exclude-standard -- '*.go' | grep -v '_test\.go$' | while read -r f; do [ -f "$f" ] && echo "$f"; done; }

complexity() {
    local out
    # gocyclo exits 1 when it lists a function; an error without output is a failure to run.
    out=$(go_files | xargs "$GO" run "$GOCYCLO" -over "$CYCLO_MAX" 2>"$errs") || [ -n "$out" ] || { cat "$errs"; return 1; }
    # gocyclo: "N pkg func file:line:col"; the baseline: "N pkg func file".
    awk -v max="$CYCLO_MAX" '
        FNR == NR { if ($0 !~ /^#/ && NF == 4) base[$2 " " $3 " " $4] = $1; next }
        {
            file = $4; sub(/:[0-9]+:[0-9]+$/, "", file); key = $2 " " $3 " " file; seen[key] = 1
            if (!(key in base)) { printf "complexity: %s is %d, over %d\n", $4 " " $3, $1, max; bad = 1 }
            else if ($1 > base[key]) { printf "complexity: %s is %d, over its baseline %d\n", $4 " " $3, $1, base[key]; bad = 1 }
            else if ($1 < base[key]) printf "complexity: note: %s fell to %d: lower its baseline (%d)\n", $4 " " $3, $1, base[key]
        }
        END {
            for (k in base) if (!(k in seen)) printf "complexity: note: %s is at most %d now: remove its baseline line\n", k, max
            exit bad
        }' tools/lint/complexity-baseline.txt <(printf '%s\n' "$out" | grep .)
}

clones() {
    local out
    out=$(go_files | "$GO" run "$DUPL" -files -t "$DUPL_TOKENS" -plumbing 2>"$errs") || { cat "$errs"; return 1; }
    # dupl: "a.go:1-9: duplicate of b.go:3-11"; a pair is its two files, sorted.
    printf '%s\n' "$out" | grep . | awk -F': duplicate of ' '{
            a = $1; b = $2; sub(/:[0-9]+-[0-9]+$/, "", a); sub(/:[0-9]+-[0-9]+$/, "", b)
            if (a > b) { t = a; a = b; b = t }
            print a " ~ " b
        }' | sort -u >"$pairs"
    local rc=0 a b
    while read -r pair; do
        grep -qxF "$pair" <(grep -v '^#' tools/lint/clones-baseline.txt) && continue
        echo "clones: $pair (dupl -t $DUPL_TOKENS; say it once):"
        a=${pair% ~ *} b=${pair#* ~ }
        printf '%s\n' "$out" | grep -F "$a:" | grep -F "of $b:" | sed 's/^/clones:   /'
        rc=1
    done <"$pairs"
    grep -v '^#' tools/lint/clones-baseline.txt | grep . | while read -r pair; do
        grep -qxF "$pair" "$pairs" || echo "clones: note: $pair is gone: remove its baseline line"
    done
    return $rc
}

deadcode() {
    local out
    out=$("$GO" run "$DEADCODE" -test ./... 2>"$errs") || { cat "$errs"; return 1; }
    [ -z "$out" ] && return 0
    printf '%s\n' "$out" | sed 's/^/deadcode: /'
    return 1
}

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(complexity clones deadcode)
rc=0
for c in "${checks[@]}"; do
    case $c in
    complexity | clones | deadcode)
        if "$c"; then echo "lint: $c ok"; else echo "lint: $c FAILED"; rc=1; fi ;;
    *) echo "lint: unknown check $c (complexity, clones, deadcode)"; exit 2 ;;
    esac
done
exit $rc
