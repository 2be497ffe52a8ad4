package cpu_test

// The backend's model-level tests run through the one binding of the ABI
// (kernels/native), as every caller does; the op-level tests (package cpu)
// call the kernels below the ABI.

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu"
	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/cpu/isaexpect"
	"github.com/gomps/gomps/kernels/native"
)

var (
	precisionByName = map[string]native.Precision{"f32": native.PrecisionF32, "bf16": native.PrecisionBF16}
	attentionName   = map[int]string{cpu.AttentionSGEMM: isaexpect.AttentionSGEMM,
		cpu.AttentionAVX512: isaexpect.AttentionAVX512, cpu.AttentionAMX: isaexpect.AttentionAMX,
		cpu.AttentionAVX512BF16: isaexpect.AttentionAVX512BF16}
)

// thisLevel is the expectation for the ISA oneDNN runs at in this process
// (see cputest.Level).
func thisLevel(t testing.TB) isaexpect.Level { return cputest.Level(t, cpu.OneDNNISA()) }

// backend is the CPU backend's table, through the binding.
func backend(t testing.TB) *native.Backend {
	t.Helper()
	b, err := native.Lookup("cpu")
	require.NoError(t, err)
	return b
}

// openModel loads path on the CPU backend (0 = the backend's defaults).
func openModel(path string, precision native.Precision, maxBatch, maxSeq int) (*native.Model, error) {
	b, err := native.Lookup("cpu")
	if err != nil {
		return nil, err
	}
	return b.Load(path, native.Options{Precision: precision, MaxBatch: maxBatch, MaxSeq: maxSeq})
}

func tinyConfig(f16 bool) cputest.Config {
	return cputest.Config{Vocab: 100, Hidden: 64, Layers: 2, Heads: 4, Inter: 128, MaxPos: 64, TypeVocab: 2,
		Eps: 1e-12, Name: "test/tiny-random", F16: f16}
}

// testBatch is a padded batch with rows of different lengths; padding holds pad.
type testBatch struct {
	batch, seq         int
	ids, types, length []int32
}

func makeBatch(m *cputest.Model, lengths []int, seq int, seed uint64, pad int32) testBatch {
	rng := cputest.NewRNG(seed)
	b := testBatch{batch: len(lengths), seq: seq, ids: make([]int32, len(lengths)*seq),
		types: make([]int32, len(lengths)*seq)}
	for r, n := range lengths {
		b.length = append(b.length, int32(n))
		split := 1 + rng.IntN(n)
		for t := 0; t < seq; t++ {
			i := r*seq + t
			if t >= n {
				b.ids[i], b.types[i] = pad, pad
				continue
			}
			b.ids[i] = int32(rng.IntN(m.Cfg.Vocab))
			if t >= split {
				b.types[i] = 1
			}
		}
	}
	return b
}

func (b testBatch) row(r int) (ids, types []int32) {
	n := int(b.length[r])
	return b.ids[r*b.seq : r*b.seq+n], b.types[r*b.seq : r*b.seq+n]
}

func forward(t *testing.T, c *native.Context, b testBatch) []float32 {
	t.Helper()
	logits := make([]float32, b.batch)
	require.NoError(t, c.Forward(b.batch, b.seq, b.ids, b.types, b.length, logits))
	return logits
}

func openTest(t *testing.T, path string, plain bool, maxBatch, maxSeq int) (*native.Model, *native.Context) {
	t.Helper()
	if plain {
		t.Setenv("GOMPS_CPU_PLAIN", "1")
	} else {
		t.Setenv("GOMPS_CPU_PLAIN", "")
	}
	m, err := openModel(path, native.PrecisionF32, maxBatch, maxSeq)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	c, err := m.NewContext(2)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return m, c
}

func stddev(x []float32) float64 {
	mean := 0.0
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	s := 0.0
	for _, v := range x {
		s += (float64(v) - mean) * (float64(v) - mean)
	}
	return math.Sqrt(s / float64(len(x)))
}

func statusOf(err error) native.Code {
	var e *native.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func errMsg(err error) string {
	var e *native.Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return ""
}
