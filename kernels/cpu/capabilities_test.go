package cpu_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/native"
)

// TestCapabilities: the CPU backend's answers: only real tokens are computed
// (not padded), no limit of its own on the sequence, and for a thread budget
// one single-threaded instance per thread up to 4, then the largest count up
// to 4 that splits the threads evenly (1 when none does).
func TestCapabilities(t *testing.T) {
	b := backend(t)
	for _, tc := range []struct{ threads, instances int }{
		{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 1}, {6, 3}, {7, 1}, {8, 4}, {9, 3}, {12, 4}, {64, 4},
	} {
		t.Run(fmt.Sprintf("threads=%d", tc.threads), func(t *testing.T) {
			c, err := b.Capabilities(tc.threads)
			require.NoError(t, err)
			assert.Equal(t, tc.instances, c.Instances, "instances")
			assert.Equal(t, tc.threads/tc.instances, c.Threads, "threads per instance")
			assert.False(t, c.Padded, "the CPU backend computes only real tokens")
			assert.Equal(t, 65536, c.MaxBatch)
			assert.Zero(t, c.MaxSeq, "the model's positions bound the sequence")
			assert.Contains(t, c.Precisions, native.PrecisionF32)
			assert.NotContains(t, c.Precisions, native.PrecisionF16, "f16 is Metal's")
		})
	}
}

// TestMemoryInUse: the capability answer's memory in use counts a model's
// heap (its packed weights) and a context's scratch, and drops back when
// they are freed.
func TestMemoryInUse(t *testing.T) {
	b := backend(t)
	mem := func() int64 {
		c, err := b.Capabilities(1)
		require.NoError(t, err)
		return c.MemoryInUse
	}
	tm := cputest.RandomModel(tinyConfig(false), 60)
	path := tm.Write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	before := mem()
	m, err := openModel(path, native.PrecisionF32, 8, 64)
	require.NoError(t, err)
	withModel := mem()
	var linear int64 // the plain size of the linear weights, which the model packs
	for _, tt := range tm.Tensors {
		if strings.HasSuffix(tt.Name, ".weight") && strings.HasPrefix(tt.Name, "layer.") {
			linear += int64(tt.Elems()) * 4
		}
	}
	assert.GreaterOrEqual(t, withModel-before, linear, "the packed weights")
	assert.Less(t, withModel-before, 2*linear, "the packed weights")
	c, err := m.NewContext(2)
	require.NoError(t, err)
	withContext := mem()
	assert.GreaterOrEqual(t, withContext-withModel, m.Info().ContextBytes, "the scratch of a 2-thread context")
	require.NoError(t, c.SetThreads(8))
	assert.Greater(t, mem(), withContext, "more threads, more attention scratch")
	c.Close()
	assert.Equal(t, withModel, mem(), "context freed")
	m.Close()
	assert.Equal(t, before, mem(), "model freed")
}

// TestLoadReleasesFilePages: after a load the backend holds the weights it
// packed or converted, and the file's pages no longer count in the
// process's resident memory (the mapping stays; a forward pages back in
// only what it reads in place). Checked on the mapping's own Rss in
// /proc/self/smaps, F32 and F16 files, both paths.
func TestLoadReleasesFilePages(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps"); err != nil {
		t.Skip("no /proc/self/smaps on this system")
	}
	cfg := tinyConfig(false)
	cfg.Hidden, cfg.Inter, cfg.Layers, cfg.Vocab = 128, 512, 4, 2000 // 4.4 MB of f32 tensors
	for _, f16 := range []bool{false, true} {
		for _, plain := range []bool{false, true} {
			t.Run(fmt.Sprintf("f16=%v/plain=%v", f16, plain), func(t *testing.T) {
				cfg.F16 = f16
				tm := cputest.RandomModel(cfg, 61)
				path := tm.Write(t, t.TempDir())
				size, err := os.Stat(path)
				require.NoError(t, err)
				m, c := openTest(t, path, plain, 4, 32)
				// the binding read the tokenizer (one slot) after the load
				assert.LessOrEqual(t, fileRSS(t, path), int64(64<<10), "resident bytes of the %d-byte file after the load", size.Size())
				b := makeBatch(tm, []int{3, 32}, 32, 1, 0)
				want := make([]float64, b.batch)
				for r := range want {
					ids, types := b.row(r)
					want[r] = cputest.Forward64(tm, ids, types)
				}
				got := forward(t, c, b)
				assert.InDeltaSlice(t, want, f64s(got), 1e-4, "the forward after the release")
				t.Logf("file %d bytes; resident after a forward: %d bytes; weights %d bytes", size.Size(), fileRSS(t, path), m.Info().WeightsBytes)
			})
		}
	}
}

func f64s(x []float32) []float64 { return cputest.F64(x) }

// fileRSS is the resident bytes of this process's mappings of path
// (/proc/self/smaps: the Rss of every mapping whose pathname is path).
func fileRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	var total int64
	in := false
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			found = found || in
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			require.NoError(t, err)
			total += kb << 10
		}
	}
	require.NoError(t, sc.Err())
	require.True(t, found, "%s is not mapped", path)
	return total
}
