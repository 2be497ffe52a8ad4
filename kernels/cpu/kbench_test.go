package cpu

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKernelBenchTiny runs every kernel at tiny shapes and checks that each
// reports a positive, finite rate against positive peaks.
func TestKernelBenchTiny(t *testing.T) {
	for _, prec := range []struct {
		name string
		p    int
	}{{"f32", PrecisionF32}, {"bf16", PrecisionBF16}} {
		t.Run("precision="+prec.name, func(t *testing.T) {
			cfg := KernelBenchConfig{Shape: KernelShape{Hidden: 32, Heads: 2, Intermediate: 64, Vocab: 100},
				Batch: 3, Seqs: []int{8, 17}, Threads: 2, Precision: prec.p, MinTime: time.Millisecond, MinReps: 3, Seed: 7}
			kb, err := RunKernelBench(cfg)
			l := thisLevel(t)
			if prec.p == PrecisionBF16 && !l.BF16 {
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, StatusUnsupported, e.Code, "bf16 at %s: refused as a model load is", l.ISA)
				assert.Contains(t, e.Msg, l.BF16Refusal())
				return
			}
			require.NoError(t, err)
			assert.Greater(t, kb.Peaks.FMA, 0.0, "FMA peak")
			assert.NotEmpty(t, kb.Peaks.FMAISA)
			assert.Greater(t, kb.Peaks.Matmul, 0.0, "matmul peak")
			assert.Greater(t, kb.Peaks.Copy, 0.0, "copy peak")
			want := 12 // the default path's kernels, attention_sgemm and softmax_c
			if prec.p == PrecisionBF16 {
				want++ // f32_to_bf16 (no attention_amx: head_dim 16)
			}
			if l.AVX512 {
				want++ // attention_avx512 (head_dim 16)
			}
			require.Len(t, kb.Results, want*len(cfg.Seqs), "every available kernel at every length")
			seen := map[string]bool{}
			for _, r := range kb.Results {
				name := fmt.Sprintf("%s/L=%02d", r.Name, r.Seq)
				assert.False(t, seen[name], "%s once", name)
				seen[name] = true
				assert.Greater(t, r.Best, time.Duration(0), name)
				assert.GreaterOrEqual(t, r.Median, r.Best, name)
				assert.GreaterOrEqual(t, r.Reps, 3, name)
				assert.True(t, r.Rate > 0 && !math.IsInf(r.Rate, 0), "%s rate %v", name, r.Rate)
				assert.True(t, r.PeakFrac > 0 && !math.IsInf(r.PeakFrac, 0), "%s peak fraction %v", name, r.PeakFrac)
				assert.True(t, (r.FLOPs > 0) != (r.Bytes > 0), "%s has one kind of work", name)
			}
			for _, n := range []string{"embeddings", "qkv", "attention", "softmax", "attn_out", "layernorm", "ffn_up", "gelu", "ffn_down", "pooler", "attention_sgemm", "softmax_c"} {
				assert.True(t, seen[n+"/L=08"] && seen[n+"/L=17"], "kernel %s measured", n)
			}
			d, pps := kb.ForwardEstimate(8, 2)
			assert.Greater(t, d, time.Duration(0))
			assert.Greater(t, pps, 0.0)
		})
	}
}

func TestKernelBenchErrors(t *testing.T) {
	for name, cfg := range map[string]KernelBenchConfig{
		"heads":     {Shape: KernelShape{Hidden: 30, Heads: 4, Intermediate: 8, Vocab: 10}, Batch: 1, Seqs: []int{4}},
		"batch":     {Shape: MiniLMShape, Batch: 0, Seqs: []int{4}},
		"seqs":      {Shape: MiniLMShape, Batch: 1},
		"precision": {Shape: MiniLMShape, Batch: 1, Seqs: []int{4}, Precision: 7},
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := RunKernelBench(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "kbench: ")
		})
	}
}
