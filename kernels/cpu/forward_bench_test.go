package cpu_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/native"
)

// realShape is cross-encoder/ms-marco-MiniLM-L-6-v2's shape.
func realShape() cputest.Config {
	return cputest.Config{Vocab: 30522, Hidden: 384, Layers: 6, Heads: 12, Inter: 1536, MaxPos: 512,
		TypeVocab: 2, Eps: 1e-12, Name: "test/real-shape-random"}
}

// forwardFLOPs is the nominal work of one forward over rows of seq tokens:
// the four linear layers and the two attention products of every layer for
// every token (the backend skips most of the last layer for non-[CLS] tokens,
// so this is the work an unpruned forward does), plus the pooler.
func forwardFLOPs(c cputest.Config, rows, seq int) float64 {
	H, I, L := float64(c.Hidden), float64(c.Inter), float64(c.Layers)
	tokens := float64(rows * seq)
	linear := 2 * tokens * L * (3*H*H + H*H + 2*H*I)
	attention := float64(rows) * L * 4 * float64(seq*seq) * H
	return linear + attention + 2*float64(rows)*H*H
}

// BenchmarkForward is one forward of the real-shape model (random weights) at
// batch 32 x seq 128, every row full length, on 2 threads (the reference
// machine's cores).
func BenchmarkForward(b *testing.B) {
	var f32Logits []float32 // of the f32 run, for bf16's max|dlogit|
	for _, tc := range []struct {
		precision native.Precision
		name      string
	}{{native.PrecisionF32, "f32"}, {native.PrecisionBF16, "bf16"}} {
		b.Run(fmt.Sprintf("precision=%s/batch=32/seq=128/threads=2", tc.name), func(b *testing.B) {
			cfg := realShape()
			tm := cputest.RandomModel(cfg, 1)
			path := tm.Write(b, b.TempDir())
			b.Setenv("GOMPS_CPU_PLAIN", "")
			m, err := openModel(path, tc.precision, 32, 128)
			if statusOf(err) == native.CodeUnsupported {
				b.Skipf("%v", err)
			}
			require.NoError(b, err)
			defer m.Close()
			c, err := m.NewContext(2)
			require.NoError(b, err)
			defer c.Close()
			const rows, seq = 32, 128
			lengths := make([]int, rows)
			for i := range lengths {
				lengths[i] = seq
			}
			batch := makeBatch(tm, lengths, seq, 5, 0)
			logits := make([]float32, rows)
			for i := 0; i < 2; i++ { // warm-up: primitives are made on first use
				require.NoError(b, c.Forward(rows, seq, batch.ids, batch.types, batch.length, logits))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				_ = c.Forward(rows, seq, batch.ids, batch.types, batch.length, logits)
			}
			sec := time.Since(start).Seconds()
			b.ReportMetric(float64(rows*b.N)/sec, "pairs/s")
			b.ReportMetric(forwardFLOPs(cfg, rows, seq)*float64(b.N)/sec/1e9, "GFLOP/s")
			b.StopTimer()
			require.NoError(b, c.Forward(rows, seq, batch.ids, batch.types, batch.length, logits))
			if tc.precision == native.PrecisionF32 {
				f32Logits = append([]float32(nil), logits...)
			} else if f32Logits != nil {
				d := 0.0
				for i := range logits {
					d = math.Max(d, math.Abs(float64(logits[i]-f32Logits[i])))
				}
				b.ReportMetric(d, "max|dlogit|")
			}
		})
	}
}
