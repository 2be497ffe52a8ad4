#!/usr/bin/env bash
# Runs the shell examples of README.md, as `make readme-examples` and CI do.
#
# A fenced block preceded by the line `<!-- run -->` is run with bash -e in a
# scratch directory (examples/ and gomps/ of the repo are linked into it, and
# ../shared resolves to the shared data), with bin/gomps first on PATH, in a
# bounded form:
#   - `gomps bench` runs with --requests 200 (added, or replacing another count);
#   - a `gomps serve ... &` line starts the server in the background on a free
#     port (127.0.0.1:8080 in the block is rewritten to it); the lines after it
#     run once /health answers 200, then the server gets SIGTERM and must exit 0.
# A block preceded by `<!-- not run: reason -->` is only checked: each
# `gomps <command>` in it must be a command, and every --flag it uses must be
# listed by `gomps <command> --help`. Run blocks are checked the same way.
#
# A run block that reads ../shared data skips when the data is missing, and
# fails instead when CI=true.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
README=${README:-$ROOT/README.md}
GOMPS=${GOMPS:-$ROOT/bin/gomps}
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
BLOCK_TIMEOUT=${BLOCK_TIMEOUT:-600}

[[ -x $GOMPS ]] || { echo "readme-examples: $GOMPS is missing: run make build" >&2; exit 1; }

SCRATCH=$(mktemp -d)
SERVER_PID=
cleanup() {
	[[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null || true
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
mkdir -p "$SCRATCH/bin" "$SCRATCH/work"
ln -s "$GOMPS" "$SCRATCH/bin/gomps"
ln -s "$ROOT/examples" "$SCRATCH/work/examples"
ln -s "$ROOT/gomps" "$SCRATCH/work/gomps"
[[ -d $SHARED ]] && ln -s "$SHARED" "$SCRATCH/shared"
export PATH="$SCRATCH/bin:$PATH"

# Blocks: split README into numbered files with their marker.
awk -v dir="$SCRATCH" '
	/^<!-- run -->$/ { mark = "run"; reason = ""; next }
	/^<!-- not run: .* -->$/ { mark = "check"; reason = $0; next }
	mark != "" && /^```(sh|bash|console)?$/ && !inblock { inblock = 1; n++; f = sprintf("%s/block-%02d.%s", dir, n, mark); printf "" > f; next }
	inblock && /^```$/ { inblock = 0; close(f); mark = ""; next }
	inblock { print > f; next }
	mark != "" && NF { mark = "" }
' "$README"

shopt -s nullglob
blocks=("$SCRATCH"/block-*)
if ((${#blocks[@]} == 0)); then
	echo "readme-examples: no <!-- run --> or <!-- not run: ... --> blocks in $README" >&2
	exit 1
fi

# check_flags FILE: every gomps command and flag in FILE parses.
check_flags() {
	local file=$1 line cmd help flag
	# Join continuation lines, then look at each gomps invocation.
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$file" | { grep -oE '(^|[|;&(]|\s)gomps\s+[a-z]+[^|;&]*' || true; } | while read -r line; do
		line=${line#*gomps}
		cmd=$(awk '{print $1}' <<<"$line")
		if ! help=$("$GOMPS" "$cmd" --help 2>&1); then
			echo "readme-examples: $(basename "$file"): gomps $cmd --help failed: $help" >&2
			return 1
		fi
		grep -q "^NAME:" <<<"$help" && grep -qE "gomps $cmd( |$)" <<<"$help" || {
			echo "readme-examples: $(basename "$file"): gomps $cmd is not a command" >&2
			return 1
		}
		for flag in $(grep -oE '(^|\s)--[a-z][a-z0-9-]*' <<<"$line" | tr -d ' '); do
			if ! grep -qE -- "(^|\s|, )$flag( |,|$)" <<<"$help"; then
				echo "readme-examples: $(basename "$file"): gomps $cmd has no flag $flag" >&2
				return 1
			fi
		done
	done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run_block FILE: runs a <!-- run --> block in its bounded form.
run_block() {
	local file=$1 name body port serve_line rest
	name=$(basename "$file")
	if grep -q '\.\./shared' "$file" && [[ ! -d $SHARED ]]; then
		if [[ ${CI:-} == true ]]; then
			echo "readme-examples: $name needs $SHARED (missing)" >&2
			return 1
		fi
		echo "readme-examples: $name: skipped, $SHARED is missing"
		return 0
	fi
	port=$(free_port)
	body=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$file" |
		sed -E -e "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" \
			-e '/gomps bench/{s/--requests[ =][0-9]+/--requests 200/; /--requests/!s/gomps bench/gomps bench --requests 200/}')
	cd "$SCRATCH/work"
	trap '[[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null' EXIT
	if ! grep -qE '^\s*gomps serve' <<<"$body"; then
		timeout "$BLOCK_TIMEOUT" bash -euo pipefail -c "$body"
		return
	fi
	serve_line=$(grep -m1 -E '^\s*gomps serve' <<<"$body" | sed -E 's/&\s*$//')
	rest=$(grep -v -E '^\s*gomps serve' <<<"$body")
	bash -c "exec $serve_line" &
	SERVER_PID=$!
	local ok=
	for _ in $(seq 1 600); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true) == 200 ]]; then
			ok=1
			break
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n $ok ]] || { echo "readme-examples: $name: the server never became healthy on port $port" >&2; return 1; }
	timeout "$BLOCK_TIMEOUT" bash -euo pipefail -c "$rest"
	kill -TERM "$SERVER_PID"
	local rc=0
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	((rc == 0)) || { echo "readme-examples: $name: gomps serve exited $rc after SIGTERM" >&2; return 1; }
}

failed=0
for b in "${blocks[@]}"; do
	name=$(basename "$b")
	start=$SECONDS
	if ! check_flags "$b"; then
		failed=1
		continue
	fi
	case $b in
	*.check)
		echo "readme-examples: $name: flags parse (not run)"
		;;
	*.run)
		echo "readme-examples: $name: running"
		sed 's/^/    /' "$b"
		if (run_block "$b"); then
			echo "readme-examples: $name: ok ($((SECONDS - start))s)"
		else
			echo "readme-examples: $name: FAILED" >&2
			failed=1
		fi
		;;
	esac
done
exit $failed
