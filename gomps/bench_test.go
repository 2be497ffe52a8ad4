//go:build cgo

package gomps

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
)

// forwardFLOPs counts the multiply-adds x 2 of one forward pass over a full
// batch x seq: per layer the QKV, output and FFN products (2 B S (4 H^2 +
// 2 H I)) and attention's two products (4 B S^2 H), then pooler and
// classifier. Embeddings, LayerNorm, softmax and GELU are not counted.
func forwardFLOPs(c weights.Config, batch, seq int) float64 {
	B, S, H, I := float64(batch), float64(seq), float64(c.HiddenSize), float64(c.IntermediateSize)
	perLayer := 2*B*S*(4*H*H+2*H*I) + 4*B*S*S*H
	return float64(c.NumLayers)*perLayer + 2*B*H*H + 2*B*H
}

var (
	benchModelOnce sync.Once
	benchModel     string
	benchModelErr  error
)

// realShapeModel returns the real-shape test model, or when it is not
// installed, a seeded random model of the same shape (MiniLM-L6: 6 layers,
// hidden 384, 12 heads, FFN 1536): speed does not depend on the values.
func realShapeModel(b *testing.B) (path, what string) {
	p := os.Getenv("GOMPS_TEST_MODEL")
	if p == "" {
		p = TestModelPath()
	}
	if _, err := os.Stat(p); err == nil {
		return p, "testmodel"
	}
	benchModelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gomps-bench-*")
		if err != nil {
			benchModelErr = err
			return
		}
		tmpDirs = append(tmpDirs, dir)
		tok, err := os.ReadFile(filepath.Join("testdata", "tiny", "tokenizer.json"))
		if err != nil {
			benchModelErr = err
			return
		}
		cfg := weights.Config{VocabSize: 30522, HiddenSize: 384, NumLayers: 6, NumHeads: 12,
			IntermediateSize: 1536, MaxPosition: 512, TypeVocabSize: 2, LayerNormEps: 1e-12}
		e := &hfExport{cfg: cfg, tokenizer: tok, tensors: map[string][]float32{}}
		rng := rand.New(rand.NewPCG(1, 2))
		for _, s := range cfg.Tensors() {
			v := make([]float32, s.Elems())
			for i := range v {
				if strings.HasSuffix(s.Name, ".gamma") {
					v[i] = 1
				} else {
					v[i] = float32(0.05 * rng.NormFloat64())
				}
			}
			e.tensors[s.Name] = v
		}
		e.writeDir(b, dir, e.tensors)
		benchModel = filepath.Join(dir, "random-l6.gomps")
		_, benchModelErr = weights.Convert(dir, benchModel, weights.ConvertOptions{Name: "gomps-bench/random-l6"})
	})
	require.NoError(b, benchModelErr)
	return benchModel, "random-l6"
}

// BenchmarkForward times ONE native forward pass (one cgo call) of the
// real-shape model over a full batch of 32 pairs x 128 tokens, and reports
// pairs/s and GFLOP/s (forwardFLOPs).
func BenchmarkForward(b *testing.B) {
	path, what := realShapeModel(b)
	const batch, seq = 32, 128
	for _, prec := range []string{"f32", "bf16"} {
		b.Run(fmt.Sprintf("model=%s/precision=%s/batch=%d/seq=%d", what, prec, batch, seq), func(b *testing.B) {
			m, err := loadModel(path, prec, batch, seq)
			if err != nil {
				if prec != "f32" {
					b.Skipf("precision %s: %v", prec, err)
				}
				b.Fatal(err)
			}
			defer m.Close()
			threads := runtime.NumCPU()
			c, err := m.NewContext(threads)
			require.NoError(b, err)
			defer c.Close()
			cfg := m.Info().Config

			rng := rand.New(rand.NewPCG(3, 4))
			ids := make([]int32, batch*seq)
			types := make([]int32, batch*seq)
			lengths := make([]int32, batch)
			for r := range batch {
				lengths[r] = seq
				for j := range seq {
					ids[r*seq+j] = int32(1000 + rng.IntN(cfg.VocabSize-1000))
					if j >= 16 {
						types[r*seq+j] = 1
					}
				}
			}
			logits := make([]float32, batch)
			require.NoError(b, c.Forward(batch, seq, ids, types, lengths, logits), "warm-up")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := c.Forward(batch, seq, ids, types, lengths, logits); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(batch/sec, "pairs/s")
			b.ReportMetric(forwardFLOPs(cfg, batch, seq)/sec/1e9, "GFLOP/s")
			b.ReportMetric(sec*1e3, "ms/forward")
			b.Logf("%s, %s, %d threads, ISA %s", what, prec, threads, m.Info().ISA)
		})
	}
}
