package cpu_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
)

// TestLoadsConverterOutput checks the C reader against the Go writer: a
// synthetic Hugging Face directory converted by weights.Convert (F32 and F16)
// loads, and its logits match the float64 reference over the same tensors.
func TestLoadsConverterOutput(t *testing.T) {
	for _, dt := range []weights.DType{weights.F32, weights.F16} {
		t.Run("dtype="+dt.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := weightstest.TinyConfig()
			hf, err := weightstest.WriteHFDir(dir, weightstest.Options{Config: cfg, Seed: 3})
			require.NoError(t, err)
			dst := filepath.Join(t.TempDir(), "tiny.gomps")
			_, err = weights.Convert(dir, dst, weights.ConvertOptions{DType: dt, Name: "test/tiny"})
			require.NoError(t, err)

			nc := cputest.Config{Vocab: cfg.VocabSize, Hidden: cfg.HiddenSize, Layers: cfg.NumLayers, Heads: cfg.NumHeads,
				Inter: cfg.IntermediateSize, MaxPos: cfg.MaxPosition, TypeVocab: cfg.TypeVocabSize, Eps: cfg.LayerNormEps,
				F16: dt == weights.F16}
			tm := &cputest.Model{Cfg: nc, Tensors: cputest.TensorSpecs(nc)}
			get := func(name string) []float32 {
				full := name
				if name != "classifier.weight" && name != "classifier.bias" {
					full = "bert." + name
				}
				v, ok := hf[full]
				require.True(t, ok, "tensor %s", full)
				out := append([]float32(nil), v.Values...)
				if nc.F16 {
					for i, x := range out {
						out[i] = cputest.F16ToF32(cputest.F32ToF16(x))
					}
				}
				return out
			}
			from := map[string]string{
				"embeddings.word": "embeddings.word_embeddings.weight", "embeddings.position": "embeddings.position_embeddings.weight",
				"embeddings.token_type": "embeddings.token_type_embeddings.weight", "embeddings.ln.gamma": "embeddings.LayerNorm.weight",
				"embeddings.ln.beta": "embeddings.LayerNorm.bias", "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias",
				"classifier.weight": "classifier.weight", "classifier.bias": "classifier.bias",
			}
			for l := 0; l < nc.Layers; l++ {
				p, e := fmt.Sprintf("layer.%d.", l), fmt.Sprintf("encoder.layer.%d.", l)
				for k, v := range map[string]string{
					"attn_out.weight": "attention.output.dense.weight", "attn_out.bias": "attention.output.dense.bias",
					"attn_ln.gamma": "attention.output.LayerNorm.weight", "attn_ln.beta": "attention.output.LayerNorm.bias",
					"ffn_up.weight": "intermediate.dense.weight", "ffn_up.bias": "intermediate.dense.bias",
					"ffn_down.weight": "output.dense.weight", "ffn_down.bias": "output.dense.bias",
					"ffn_ln.gamma": "output.LayerNorm.weight", "ffn_ln.beta": "output.LayerNorm.bias",
				} {
					from[p+k] = e + v
				}
			}
			for i := range tm.Tensors {
				tt := &tm.Tensors[i]
				if src, ok := from[tt.Name]; ok {
					tt.Data = get(src)
					continue
				}
				var l int
				var kind string
				_, err := fmt.Sscanf(tt.Name, "layer.%d.qkv.%s", &l, &kind)
				require.NoError(t, err, tt.Name)
				for _, q := range []string{"query", "key", "value"} {
					tt.Data = append(tt.Data, get(fmt.Sprintf("encoder.layer.%d.attention.self.%s.%s", l, q, kind))...)
				}
			}

			for _, plain := range []bool{false, true} {
				_, c := openTest(t, dst, plain, 4, cfg.MaxPosition)
				b := makeBatch(tm, []int{5, cfg.MaxPosition, 1, 23}, cfg.MaxPosition, 11, 0)
				got := forward(t, c, b)
				for r := 0; r < b.batch; r++ {
					ids, types := b.row(r)
					assert.InDelta(t, cputest.Forward64(tm, ids, types), float64(got[r]), 1e-5, "plain=%v row %d", plain, r)
				}
			}
		})
	}
}
