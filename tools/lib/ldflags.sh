#!/usr/bin/env bash
# Prints the -ldflags that stamp gomps' version and commit (cmd/gomps/version.go), for
# make build, make install and tools/setup.sh:
#
#   go build -ldflags "$(bash tools/lib/ldflags.sh)" ./cmd/gomps
#
# main.version: the nearest v* tag (git describe: v0.1.0, or v0.1.0-3-gabc1234 past it); without
#   one nothing is stamped and the binary reports its committed baseVersion with "-devel".
# main.commit: the full commit hash. main.modified: true when the work tree has uncommitted changes.
# Outside a git checkout it prints nothing: the binary then says it was built without VCS data.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
git rev-parse --git-dir >/dev/null 2>&1 || exit 0
flags="-X main.commit=$(git rev-parse HEAD)"
if tag=$(git describe --tags --match 'v*' 2>/dev/null); then
	flags="-X main.version=$tag $flags"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	flags="$flags -X main.modified=true"
fi
echo "$flags"
