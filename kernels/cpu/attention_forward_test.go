package cpu_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu"
	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/native"
)

// TestAttentionKernelEnv: an unknown GOMPS_CPU_ATTENTION is refused, by the
// op and by context init.
func TestAttentionKernelEnv(t *testing.T) {
	t.Setenv("GOMPS_CPU_ATTENTION", "fast")
	assert.Equal(t, -1, cpu.AttentionKernel(cpu.PrecisionF32, 32))
	qkv := cputest.RandSlice(cputest.NewRNG(1), 3*3*32, 1) // one row of 3 tokens, one head of 32
	out := make([]float32, 3*32)
	assert.Error(t, cpu.FastAttentionPrecision(cpu.PrecisionF32, qkv, 1, []int64{0, 3}, 1, 32, false, 3, 1, out))
	tm := cputest.RandomModel(tinyConfig(false), 50)
	path := tm.Write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	m, err := openModel(path, native.PrecisionF32, 2, 16)
	require.NoError(t, err)
	defer m.Close()
	_, err = m.NewContext(1)
	require.Error(t, err)
	assert.Equal(t, native.CodeInvalidArg, statusOf(err))
	assert.Contains(t, errMsg(err), "cpu: context init: GOMPS_CPU_ATTENTION=fast")
}

// bf16ForwardHeads32Bound bounds max |logit - float64 forward| of the bf16
// precision on TestAttentionForwardKernels' model (2 layers, 2 heads of 32,
// logit std 2.3). The linear layers' bf16 inputs and weights alone give
// 0.033 there (attention in f32); the AMX attention adds the roundings of Q,
// K, V and P (about 3.3e-3 relative on each attention output, see
// bf16AttentionNMSE): observed 0.043. The bound leaves about 2x.
const bf16ForwardHeads32Bound = 0.09

// TestAttentionForwardKernels runs whole forwards of a small model with heads
// of 32 (the AMX kernel's head size) through each attention kernel a context
// selects, against the float64 forward: f32 within 1e-4 (as the model tests),
// bf16 within bf16ForwardHeads32Bound; in bf16 the default must be the AMX
// kernel where AMX is usable, and its logits must differ from those with f32
// attention.
func TestAttentionForwardKernels(t *testing.T) {
	l := thisLevel(t)
	cfg := cputest.Config{Vocab: 100, Hidden: 64, Layers: 2, Heads: 2, Inter: 128, MaxPos: 160, TypeVocab: 2,
		Eps: 1e-12, Name: "test/heads-of-32"}
	tm := cputest.RandomModel(cfg, 52)
	path := tm.Write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	b := makeBatch(tm, []int{1, 2, 17, 33, 128, 100, 129, 64}, 160, 9, 0)
	want := make([]float64, b.batch)
	for r := range want {
		ids, types := b.row(r)
		want[r] = cputest.Forward64(tm, ids, types)
	}
	logits := map[string][]float32{}
	for _, tc := range []struct {
		env       string
		precision native.Precision
		bound     float64
	}{
		{"sgemm", native.PrecisionF32, 1e-4}, {"avx512", native.PrecisionF32, 1e-4}, {"", native.PrecisionF32, 1e-4},
		{"sgemm", native.PrecisionBF16, bf16ForwardHeads32Bound}, {"", native.PrecisionBF16, bf16ForwardHeads32Bound},
		{"avx512bf16", native.PrecisionBF16, bf16ForwardHeads32Bound},
	} {
		prec := tc.precision.String()
		name := prec + "/" + map[bool]string{true: "default", false: tc.env}[tc.env == ""]
		t.Run("precision="+name, func(t *testing.T) {
			t.Setenv("GOMPS_CPU_ATTENTION", tc.env)
			m, err := openModel(path, tc.precision, 8, 160)
			if tc.precision == native.PrecisionBF16 && !l.BF16 {
				require.Equal(t, native.CodeUnsupported, statusOf(err), "bf16 at %s: %v", l.ISA, err)
				return
			}
			require.NoError(t, err)
			defer m.Close()
			c, err := m.NewContext(2)
			require.NoError(t, err)
			defer c.Close()
			got := forward(t, c, b)
			maxDelta := 0.0
			for r := range got {
				maxDelta = math.Max(maxDelta, math.Abs(float64(got[r])-want[r]))
			}
			t.Logf("kernel %d: max |logit - float64| = %.3g, logit std %.3g", cpu.AttentionKernel(int(tc.precision), 32), maxDelta, stddev(got))
			assert.LessOrEqual(t, maxDelta, tc.bound)
			logits[name] = got
		})
	}
	if l.BF16 {
		t.Setenv("GOMPS_CPU_ATTENTION", "")
		assert.Equal(t, l.Attention("", "bf16"), attentionName[cpu.AttentionKernel(cpu.PrecisionBF16, 32)])
		assert.NotEqual(t, logits["bf16/sgemm"], logits["bf16/default"],
			"bf16 default attention gave the f32 attention's logits: is the bf16 kernel in force?")
	}
}
