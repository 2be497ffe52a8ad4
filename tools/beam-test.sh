#!/usr/bin/env bash
# tools/beam-test.sh: vet and test the Beam pipeline (cmd/beam), a separate Go
# module so that the gomps CLI does not carry Beam. tools/test.sh runs this as
# its own stage. No -race: the module is large (Beam, gRPC, cloud clients; a
# cold build takes minutes and about 1.5 GB), and its race-prone parts are in
# the main module's packages, which the race stage covers.
#
# What runs: gofmt and go vet; the gomps CLI is built, so the pipeline's
# output is compared with `gomps score` (TestPipelineEqualsCLI); Beam's Go
# boot program is built from the pinned Beam module, so
# TestSeparateWorkerProcess can start a separate worker process the way a
# container does; then go test (Prism in-process, the tiny model). Needs libdnnl and /usr/local/lib/libtokenizers.a, as the
# main module does (tools/setup.sh).
#
#   bash tools/beam-test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/cmd/beam"
t0=$SECONDS
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
    printf 'beam-test: not gofmt-clean:\n%s\n' "$unformatted" >&2
    exit 1
fi
go vet ./...
(cd "$ROOT" && go build -o "$WORK/gomps" ./cmd/gomps)
go build -o "$WORK/beam-boot" github.com/apache/beam/sdks/v2/go/container
GOMPS_BIN="$WORK/gomps" GOMPS_BEAM_BOOT="$WORK/beam-boot" go test -count=1 -timeout 20m ./...
printf 'beam-test: ok in %ss\n' "$((SECONDS - t0))"
