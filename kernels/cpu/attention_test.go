package cpu

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
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
	rng := cputest.NewRNG(seed)
	b := attentionBatch{heads: heads, hd: hd, offsets: []int64{0}}
	for i, n := range lengths {
		b.maxSeq = max(b.maxSeq, n)
		row := cputest.RandSlice(rng, n*3*H, 1)
		b.qkv = append(b.qkv, row...)
		b.offsets = append(b.offsets, b.offsets[i]+int64(n))
		o := cputest.Attention64(cputest.F64(row), n, heads, hd)
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
