//go:build cgo && !darwin

package native_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/kernels/native/nativetest"
)

func refBackend(t *testing.T) *native.Backend {
	t.Helper()
	b, err := nativetest.Register()
	require.NoError(t, err)
	return b
}

// TestTwoBackends links two backends into one test binary, the CPU backend
// built into the binding and the reference backend of nativetest, and runs
// the same model through both with the same calls: each answers the
// capability query for itself, loads the file, and gives the float64
// reference's logits on a padded batch of mixed lengths.
func TestTwoBackends(t *testing.T) {
	ref := refBackend(t)
	var names []string
	for _, b := range native.Backends() {
		names = append(names, b.Name())
	}
	assert.Equal(t, []string{"cpu", "ref"}, names, "linked, then registered")
	def, err := native.Default()
	require.NoError(t, err)
	assert.Equal(t, "cpu", def.Name(), "the default is the built-in backend")
	got, err := native.Lookup("ref")
	require.NoError(t, err)
	assert.Same(t, ref, got)

	cfg := cputest.Config{Vocab: 50, Hidden: 32, Layers: 2, Heads: 2, Inter: 64, MaxPos: 40, TypeVocab: 2, Eps: 1e-12, Name: "test/two-backends"}
	tm := cputest.RandomModel(cfg, 71)
	path := tm.Write(t, t.TempDir())
	const seq = 40
	lengths := []int{1, 40, 7, 23}
	ids, types := make([]int32, len(lengths)*seq), make([]int32, len(lengths)*seq)
	rng := cputest.NewRNG(5)
	want := make([]float64, len(lengths))
	for r, n := range lengths {
		for j := range seq {
			ids[r*seq+j] = int32(rng.IntN(cfg.Vocab)) // padding too: it must not matter
			types[r*seq+j] = int32(rng.IntN(2))
		}
		want[r] = cputest.Forward64(tm, ids[r*seq:r*seq+n], types[r*seq:r*seq+n])
	}
	lens := make([]int32, len(lengths))
	for i, n := range lengths {
		lens[i] = int32(n)
	}
	for _, b := range []*native.Backend{def, ref} {
		t.Run("backend="+b.Name(), func(t *testing.T) {
			c, err := b.Capabilities(4)
			require.NoError(t, err)
			assert.Empty(t, c.Unusable)
			assert.Equal(t, b.Name() == "ref", c.Padded, "padded")
			assert.Equal(t, map[string]int{"cpu": 4, "ref": 1}[b.Name()], c.Instances, "preferred instances for 4 threads")
			m, err := b.Load(path, native.Options{MaxBatch: 4, MaxSeq: seq})
			require.NoError(t, err)
			defer m.Close()
			in := m.Info()
			assert.Equal(t, b.Name(), in.Backend)
			assert.Equal(t, "test/two-backends", in.Name)
			assert.Equal(t, 1, in.NumLabels)
			assert.Equal(t, cfg.Hidden, in.Config.HiddenSize)
			assert.Same(t, b, m.Backend())
			before, err := b.Capabilities(1)
			require.NoError(t, err)
			ctx, err := m.NewContext(1)
			require.NoError(t, err)
			defer ctx.Close()
			after, err := b.Capabilities(1)
			require.NoError(t, err)
			assert.Greater(t, after.MemoryInUse, before.MemoryInUse, "the context's scratch counts in its own backend")
			logits := make([]float32, len(lengths))
			require.NoError(t, ctx.Forward(len(lengths), seq, ids, types, lens, logits))
			for r := range want {
				assert.InDelta(t, want[r], float64(logits[r]), 1e-4, "row %d (length %d)", r, lengths[r])
			}
			bad := append([]int32(nil), lens...)
			bad[2] = seq + 1
			err = ctx.Forward(len(lengths), seq, ids, types, bad, logits)
			var ne *native.Error
			require.ErrorAs(t, err, &ne)
			assert.ErrorIs(t, err, native.ErrInvalidArg)
			assert.Equal(t, "forward", ne.Op)
			assert.Contains(t, ne.Msg, b.Name()+": forward: lengths[2]", "the backend's own text")
		})
	}
	// what one backend runs and the other refuses, each saying so in its voice
	_, err = ref.Load(path, native.Options{Precision: native.PrecisionBF16})
	assert.ErrorIs(t, err, native.ErrUnsupported)
	assert.ErrorContains(t, err, "ref: precision 1")
	_, err = def.Load(path, native.Options{Precision: native.PrecisionF16})
	assert.ErrorIs(t, err, native.ErrUnsupported)
	assert.ErrorContains(t, err, "cpu: precision f16 is Metal's")
}

// A table of another ABI version is refused with ErrABIMismatch.
func TestRegisterRefusesOtherABI(t *testing.T) {
	_, err := native.Register(nativetest.StaleTable())
	require.ErrorIs(t, err, native.ErrABIMismatch)
	assert.ErrorContains(t, err, fmt.Sprintf("backend stale implements version 1, gomps was compiled against %d", native.ABIVersion))
	_, err = native.Lookup("stale")
	assert.ErrorIs(t, err, native.ErrNoBackend, "a refused table is not registered")
}

// Registering a table again returns the same backend; an unknown name is
// ErrNoBackend naming the backends there are.
func TestRegisterAndLookup(t *testing.T) {
	a := refBackend(t)
	b := refBackend(t)
	assert.Same(t, a, b)
	_, err := native.Lookup("tpu")
	assert.True(t, errors.Is(err, native.ErrNoBackend))
	assert.ErrorContains(t, err, `"tpu"`)
	assert.ErrorContains(t, err, `"cpu"`)
}

// A closed model or context refuses further calls instead of passing a
// freed handle to C; Close is idempotent.
func TestClosed(t *testing.T) {
	tm := cputest.RandomModel(cputest.Config{Vocab: 10, Hidden: 8, Layers: 1, Heads: 2, Inter: 8, MaxPos: 8, TypeVocab: 2, Eps: 1e-12}, 3)
	path := tm.Write(t, t.TempDir())
	b, err := native.Default()
	require.NoError(t, err)
	m, err := b.Load(path, native.Options{MaxBatch: 1, MaxSeq: 8})
	require.NoError(t, err)
	c, err := m.NewContext(1)
	require.NoError(t, err)
	c.Close()
	c.Close()
	assert.ErrorIs(t, c.Forward(1, 1, []int32{1}, []int32{0}, []int32{1}, make([]float32, 1)), native.ErrClosed)
	assert.ErrorIs(t, c.SetThreads(1), native.ErrClosed)
	m.Close()
	m.Close()
	_, err = m.NewContext(1)
	assert.ErrorIs(t, err, native.ErrClosed)
}
