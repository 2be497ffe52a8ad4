package cpu

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
)

// BenchmarkAttention is the fast attention alone at the model's shape (12
// heads of 32) over 32 rows of seq tokens: each kernel GOMPS_CPU_ATTENTION
// selects (sgemm: the old default, dnnl_sgemm + C softmax; avx512: the f32
// default; amx: the bf16 default, where AMX is usable).
func BenchmarkAttention(b *testing.B) {
	const rows, heads, hd = 32, 12, 32
	for _, seq := range []int{64, 128, 256} {
		for _, impl := range []struct {
			env       string
			precision int
		}{{"sgemm", PrecisionF32}, {"avx512", PrecisionF32}, {"amx", PrecisionBF16}, {"avx512bf16", PrecisionBF16}} {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("impl=%s/seq=%d/threads=%d", impl.env, seq, threads), func(b *testing.B) {
					b.Setenv("GOMPS_CPU_ATTENTION", impl.env)
					if impl.env == "amx" && !thisLevel(b).AMX || impl.env == "avx512bf16" && !thisLevel(b).BF16 {
						b.Skipf("no %s kernel at this ISA", impl.env)
					}
					rng := cputest.NewRNG(uint64(seq))
					qkv := cputest.RandSlice(rng, rows*seq*3*heads*hd, 1)
					offsets := make([]int64, rows+1)
					for i := range offsets {
						offsets[i] = int64(i * seq)
					}
					out := make([]float32, rows*seq*heads*hd)
					run := func() {
						_ = FastAttentionPrecision(impl.precision, qkv, rows, offsets, heads, hd, false, seq, threads, out)
					}
					require.NoError(b, FastAttentionPrecision(impl.precision, qkv, rows, offsets, heads, hd, false, seq, threads, out))
					b.ResetTimer()
					start := time.Now()
					for i := 0; i < b.N; i++ {
						run()
					}
					sec := time.Since(start).Seconds()
					flops := 4 * float64(rows) * float64(seq*seq) * float64(heads*hd)
					b.ReportMetric(flops*float64(b.N)/sec/1e9, "GFLOP/s")
				})
			}
		}
	}
}
