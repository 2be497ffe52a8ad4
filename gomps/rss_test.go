//go:build cgo && linux

package gomps

import (
	"context"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rssTolerance is how far the growth of resident memory over Open may pass
// what the backend reports the model keeps (packed weights, embeddings and
// every other tensor): 10%. Open adds the tokenizer (the Rust library's
// vocabulary), the engine's goroutines and the contexts' scratch on top,
// which fit in that 10% only because the embeddings are not resident until
// forwards read them (the file's pages are released after packing).
const rssTolerance = 0.10

// TestOpenRSS: resident memory after Open of the real-shape test model
// grows by at most the model's weights + 10% (f32, and bf16 where it is
// native). Each precision runs in a child process, so no other test's heap
// counts.
func TestOpenRSS(t *testing.T) {
	if prec := os.Getenv("GOMPS_TEST_RSS_CHILD"); prec != "" {
		openRSSChild(t, prec)
		return
	}
	path := testModelPath(t)
	bi, err := Backend()
	require.NoError(t, err)
	for _, prec := range bi.Precisions {
		t.Run("precision="+prec, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOpenRSS$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "GOMPS_TEST_RSS_CHILD="+prec, "GOMPS_TEST_MODEL="+path)
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "child output:\n%s", out)
			assert.Contains(t, string(out), "--- PASS: TestOpenRSS", "the child must have run the check")
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "RSS ") {
					t.Log(strings.TrimSpace(line))
				}
			}
		})
	}
}

func openRSSChild(t *testing.T, prec string) {
	debug.FreeOSMemory()
	before := vmRSS(t)
	r, err := Open(context.Background(), testModelPath(t), WithPrecision(prec), WithNotices(nil))
	require.NoError(t, err)
	defer r.Close()
	debug.FreeOSMemory()
	after := vmRSS(t)
	in := r.res.model.Info()
	bound := int64(float64(in.WeightsBytes) * (1 + rssTolerance))
	t.Logf("RSS %s: %.1f MB before Open, %.1f MB after (+%.1f MB); model weights %.1f MB, bound +%.1f MB; %d instances of %.1f MB scratch (address space)",
		prec, mb(before), mb(after), mb(after-before), mb(in.WeightsBytes), mb(bound), r.Info().Instances, mb(in.ContextBytes))
	assert.LessOrEqual(t, after-before, bound, "resident growth over Open")
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// vmRSS is this process's resident set (/proc/self/status VmRSS) in bytes.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			require.Len(t, f, 2)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
