//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomps/gomps/gomps/pairio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bootWrapper is the PROCESS environment's command (printf arguments: the
// pid file, the log file, Beam's boot binary). Prism 2.77 starts it with
// --id='ID', the quotes included (no shell strips them), so Beam's boot
// would ask for a worker id with quotes in it: the wrapper strips them. It
// runs boot in a new session, whose id it records, so the test can end boot
// and the worker boot starts (Prism kills only boot itself), and sends
// their output to a log file rather than the test's stdout.
const bootWrapper = `#!/usr/bin/env bash
args=()
for a in "$@"; do
    case $a in
    --id=\'*\') a=${a#--id=\'}; a="--id=${a%%\'}" ;;
    esac
    args+=("$a")
done
echo $$ >> %q
exec setsid %q "${args[@]}" >> %q 2>&1
`

// setFlags sets Beam's global flags for one test and restores them after.
func setFlags(t *testing.T, kv map[string]string) {
	t.Helper()
	for k, v := range kv {
		old := flag.Lookup(k).Value.String()
		require.NoError(t, flag.Set(k, v))
		t.Cleanup(func() { _ = flag.Set(k, old) })
	}
}

// The cluster path, on one machine: Prism starts a separate worker process
// through Beam's Go boot program (as a container would), which fetches the
// staged --worker_binary and runs it. The worker binary is this test binary,
// built with cgo (Beam's own worker build disables cgo and could not link
// the native scorer). The output equals the in-process run's.
//
// GOMPS_BEAM_BOOT names Beam's boot binary (tools/beam-test.sh builds it
// from github.com/apache/beam/sdks/v2/go/container).
func TestSeparateWorkerProcess(t *testing.T) {
	model := tinyModel(t)
	boot := os.Getenv("GOMPS_BEAM_BOOT")
	if boot == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("beam: GOMPS_BEAM_BOOT is not set under CI=true (run tools/beam-test.sh)")
		}
		t.Skip("GOMPS_BEAM_BOOT not set: build Beam's boot program to run this (tools/beam-test.sh does)")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "boot.sh")
	pidFile, logFile := filepath.Join(dir, "boot.pids"), filepath.Join(dir, "boot.log")
	require.NoError(t, os.WriteFile(wrapper, []byte(fmt.Sprintf(bootWrapper, pidFile, boot, logFile)), 0o755))
	t.Cleanup(func() {
		// End the sessions the wrapper started (boot and its worker).
		b, _ := os.ReadFile(pidFile)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("boot and worker log:\n%s", b)
		}
	})
	jsonl, _ := synthetic(t, dir, 11, 6)

	base := Options{Input: jsonl, Shards: 3, Batch: 8, TopK: 4}
	local := base
	local.Output = filepath.Join(dir, "local", "s.jsonl")
	local.Model = ModelConfig{Model: model}
	_, err = runPipeline(context.Background(), local)
	require.NoError(t, err)

	var opens atomic.Int32
	orig := openScorer
	openScorer = func(ctx context.Context, cfg ModelConfig) (scorer, error) {
		opens.Add(1)
		return orig(ctx, cfg)
	}
	defer func() { openScorer = orig }()
	setFlags(t, map[string]string{
		"environment_type":   "PROCESS",
		"environment_config": fmt.Sprintf(`{"command": %q}`, wrapper),
		"worker_binary":      self,
	})
	remote := base
	remote.Output = filepath.Join(dir, "remote", "s.jsonl")
	// A configuration this process has not opened: any open must happen
	// in the worker process.
	remote.Model = ModelConfig{Model: model, Threads: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sum, err := runPipeline(ctx, remote)
	require.NoError(t, err)
	assert.EqualValues(t, 11*6, sum.PairsScored, "the worker's counters reach the launcher")
	assert.Zero(t, opens.Load(), "the model was opened in the worker process, not here")
	for i := range base.Shards {
		want, got := readShard(t, local, i), readShard(t, remote, i)
		assertSameOutput(t, want, got, pairio.FormatJSONL, fmt.Sprintf("shard %d: separate worker vs in-process", i))
	}
}
