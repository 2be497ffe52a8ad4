package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attentionLengths are the row lengths of one mixed batch: tile and vector
// edges (15, 16, 17, 31, 33, 127, 128, 129, 255) and the extremes 1 and 512.
var attentionLengths = []int{1, 2, 15, 16, 17, 31, 33, 64, 127, 128, 129, 255, 512}

// bf16AttentionNMSE bounds the AMX kernel's normalized MSE against the
// float64 reference on N(0, 1) inputs (scores of std 1). bf16 keeps 8
// significant bits: each rounding has relative error <= 2^-8 and about
// 1.6e-3 RMS. Q and K roundings give a score error of about sqrt(2) x 1.6e-3
// = 2.3e-3 (absolute, at score std 1), which moves each probability by that
// much relatively; P and V roundings add 1.6e-3 each to every term of the
// context sum, and the context's own rounding (bf16 out, the next matmul's
// input) 1.6e-3 more, so its relative RMS error is about
// sqrt(2.3^2 + 3 x 1.6^2) x 1e-3 = 3.6e-3, i.e. NMSE about 1.3e-5. Observed:
// 1.19e-5 on the mixed batch, 6.2e-6 CLS-only (9.2e-6 and 5.0e-6 when the
// context was still written in f32). The bound leaves about 3.5x in NMSE.
const bf16AttentionNMSE = 4.5e-5

type attentionBatch struct {
	heads, hd, maxSeq int
	qkv               []float32 // packed rows [total, 3H]
	offsets           []int64
	want, wantCLS     []float64
}

func makeAttentionBatch(heads, hd int, lengths []int, seed uint64) attentionBatch {
	H := heads * hd
	rng := newRNG(seed)
	b := attentionBatch{heads: heads, hd: hd, offsets: []int64{0}}
	for i, n := range lengths {
		b.maxSeq = max(b.maxSeq, n)
		row := randSlice(rng, n*3*H, 1)
		b.qkv = append(b.qkv, row...)
		b.offsets = append(b.offsets, b.offsets[i]+int64(n))
		o := refAttention64(f64(row), n, heads, hd)
		b.want = append(b.want, o...)
		b.wantCLS = append(b.wantCLS, o[:H]...)
	}
	return b
}

// checkAttention checks NaN/Inf, the guards and the NMSE bound; returns the NMSE.
func checkAttention(t *testing.T, buf []float32, want []float64, bound float64) float64 {
	t.Helper()
	return checkOutBound(t, buf, len(want), want, bound)
}

// TestAttentionKernels runs every attention kernel on one batch of mixed
// lengths, all queries and CLS-only, against the float64 reference: the f32
// kernels at NMSE <= 1e-7, the AMX kernel (bf16) at bf16AttentionNMSE, and
// the kernel each row length alone gets (a batch of one row).
func TestAttentionKernels(t *testing.T) {
	const heads, hd = 3, 32
	b := makeAttentionBatch(heads, hd, attentionLengths, 41)
	H := heads * hd
	type kernel struct {
		env       string
		precision int
		want      int
		bound     float64
	}
	kernels := []kernel{
		{"sgemm", PrecisionF32, AttentionSGEMM, maxNMSE},
		{"sgemm", PrecisionBF16, AttentionSGEMM, maxNMSE},
	}
	l := thisLevel(t)
	if l.AVX512 {
		kernels = append(kernels, kernel{"avx512", PrecisionF32, AttentionAVX512, maxNMSE},
			kernel{"", PrecisionF32, AttentionAVX512, maxNMSE},
			kernel{"amx", PrecisionF32, AttentionAVX512, maxNMSE}) // never bf16 in f32 precision
	}
	if l.BF16 {
		kernels = append(kernels, kernel{"avx512bf16", PrecisionBF16, AttentionAVX512BF16, bf16AttentionNMSE},
			kernel{"avx512bf16", PrecisionF32, AttentionAVX512, maxNMSE}) // never bf16 in f32 precision
	}
	if l.AMX {
		kernels = append(kernels, kernel{"amx", PrecisionBF16, AttentionAMX, bf16AttentionNMSE},
			kernel{"", PrecisionBF16, AttentionAMX, bf16AttentionNMSE})
	} else {
		t.Logf("no AMX at %s: the AMX kernel's cases are not run", l.ISA)
	}
	for _, k := range kernels {
		prec := map[int]string{PrecisionF32: "f32", PrecisionBF16: "bf16"}[k.precision]
		name := k.env
		if name == "" {
			name = "default"
		}
		t.Run(fmt.Sprintf("op=attention/kernel=%s/precision=%s", name, prec), func(t *testing.T) {
			t.Setenv("GOMPS_CPU_ATTENTION", k.env)
			require.Equal(t, k.want, AttentionKernel(k.precision, hd), "kernel selected")
			total := len(b.want)
			buf, out := guarded(total)
			require.NoError(t, FastAttentionPrecision(k.precision, b.qkv, len(attentionLengths), b.offsets, heads, hd, false, b.maxSeq, 2, out))
			e := checkAttention(t, buf, b.want, k.bound)
			t.Logf("mixed batch: NMSE %.3g", e)
			buf, out = guarded(len(b.wantCLS))
			require.NoError(t, FastAttentionPrecision(k.precision, b.qkv, len(attentionLengths), b.offsets, heads, hd, true, b.maxSeq, 2, out))
			e = checkAttention(t, buf, b.wantCLS, k.bound)
			t.Logf("CLS only: NMSE %.3g", e)
			// each length alone, with max_seq = that length (scratch sized exactly)
			for i, n := range attentionLengths {
				lo, hi := b.offsets[i], b.offsets[i+1]
				buf, out := guarded(n * H)
				require.NoError(t, FastAttentionPrecision(k.precision, b.qkv[lo*int64(3*H):hi*int64(3*H)], 1,
					[]int64{0, int64(n)}, heads, hd, false, n, 1, out))
				checkAttention(t, buf, b.want[lo*int64(H):hi*int64(H)], k.bound)
			}
		})
	}
}

// TestAttentionKernelEnv: an unknown GOMPS_CPU_ATTENTION is refused, by the
// op and by context init.
func TestAttentionKernelEnv(t *testing.T) {
	t.Setenv("GOMPS_CPU_ATTENTION", "fast")
	assert.Equal(t, -1, AttentionKernel(PrecisionF32, 32))
	b := makeAttentionBatch(1, 32, []int{3}, 1)
	out := make([]float32, len(b.want))
	assert.Error(t, FastAttentionPrecision(PrecisionF32, b.qkv, 1, b.offsets, 1, 32, false, 3, 1, out))
	tm := randomModel(tinyConfig(false), 50)
	path := tm.write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	m, err := OpenModel(path, PrecisionF32, 2, 16)
	require.NoError(t, err)
	defer m.Close()
	_, err = NewContext(m, 1)
	require.Error(t, err)
	assert.Equal(t, StatusInvalidArg, statusOf(err))
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
	cfg := nativeConfig{Vocab: 100, Hidden: 64, Layers: 2, Heads: 2, Inter: 128, MaxPos: 160, TypeVocab: 2,
		Eps: 1e-12, Name: "test/heads-of-32"}
	tm := randomModel(cfg, 52)
	path := tm.write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	b := makeBatch(tm, []int{1, 2, 17, 33, 128, 100, 129, 64}, 160, 9, 0)
	want := make([]float64, b.batch)
	for r := range want {
		ids, types := b.row(r)
		want[r] = refForward64(tm, ids, types)
	}
	logits := map[string][]float32{}
	for _, tc := range []struct {
		env       string
		precision int
		bound     float64
	}{
		{"sgemm", PrecisionF32, 1e-4}, {"avx512", PrecisionF32, 1e-4}, {"", PrecisionF32, 1e-4},
		{"sgemm", PrecisionBF16, bf16ForwardHeads32Bound}, {"", PrecisionBF16, bf16ForwardHeads32Bound},
		{"avx512bf16", PrecisionBF16, bf16ForwardHeads32Bound},
	} {
		prec := map[int]string{PrecisionF32: "f32", PrecisionBF16: "bf16"}[tc.precision]
		name := prec + "/" + map[bool]string{true: "default", false: tc.env}[tc.env == ""]
		t.Run("precision="+name, func(t *testing.T) {
			t.Setenv("GOMPS_CPU_ATTENTION", tc.env)
			m, err := OpenModel(path, tc.precision, 8, 160)
			if tc.precision == PrecisionBF16 && !l.BF16 {
				require.Equal(t, StatusUnsupported, statusOf(err), "bf16 at %s: %v", l.ISA, err)
				return
			}
			require.NoError(t, err)
			defer m.Close()
			c, err := NewContext(m, 2)
			require.NoError(t, err)
			defer c.Close()
			got := forward(t, c, b)
			maxDelta := 0.0
			for r := range got {
				maxDelta = math.Max(maxDelta, math.Abs(float64(got[r])-want[r]))
			}
			t.Logf("kernel %d: max |logit - float64| = %.3g, logit std %.3g", AttentionKernel(tc.precision, 32), maxDelta, stddev(got))
			assert.LessOrEqual(t, maxDelta, tc.bound)
			logits[name] = got
		})
	}
	if l.BF16 {
		t.Setenv("GOMPS_CPU_ATTENTION", "")
		assert.Equal(t, l.Attention("", "bf16"), attentionName[AttentionKernel(PrecisionBF16, 32)])
		assert.NotEqual(t, logits["bf16/sgemm"], logits["bf16/default"],
			"bf16 default attention gave the f32 attention's logits: is the bf16 kernel in force?")
	}
}
