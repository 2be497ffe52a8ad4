package metal_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// The tests of this package compare the Metal backend (on a Mac) against
// refForward, an independent float64 BertForSequenceClassification written
// from the model's definition; on Linux, reference_cpu_test.go checks
// refForward itself against the CPU backend, so a Mac run tests against a
// reference already known to be right.

// tinyModel writes the weightstest tiny model (2 layers, hidden 32, vocab
// 64, 40 positions) as a native file of dtype dt and returns its path.
func tinyModel(t *testing.T, dt weights.DType) string {
	t.Helper()
	hf, dir := t.TempDir(), t.TempDir()
	_, err := weightstest.WriteHFDir(hf, weightstest.Options{Config: weightstest.TinyConfig(), Seed: 11})
	require.NoError(t, err)
	out := filepath.Join(dir, "tiny-"+dt.String()+".gomps")
	_, err = weights.Convert(hf, out, weights.ConvertOptions{DType: dt})
	require.NoError(t, err)
	return out
}

// batchInput is a padded batch as the ABI takes it.
type batchInput struct {
	batch, seq          int
	ids, types, lengths []int32
}

// randomBatch makes batch rows of random lengths in [1, seq] over vocab,
// with [CLS]-like id 2 first and token types 0 then 1, and junk padding (the
// ABI says padding content is ignored).
func randomBatch(r *rand.Rand, batch, seq, vocab int) batchInput {
	in := batchInput{batch: batch, seq: seq, ids: make([]int32, batch*seq), types: make([]int32, batch*seq),
		lengths: make([]int32, batch)}
	for b := range batch {
		n := 1 + r.IntN(seq)
		in.lengths[b] = int32(n)
		split := 1 + r.IntN(n)
		for j := range seq {
			if j < n {
				in.ids[b*seq+j] = int32(r.IntN(vocab))
				if j >= split {
					in.types[b*seq+j] = 1
				}
			} else {
				in.ids[b*seq+j] = int32(r.IntN(vocab)) // padding: must not matter
				in.types[b*seq+j] = int32(r.IntN(2))
			}
		}
		in.ids[b*seq] = 2
	}
	return in
}

// refModel holds the tensors of a native file as float64.
type refModel struct {
	cfg weights.Config
	t   map[string][]float64
}

func loadRef(path string) (*refModel, error) {
	n, err := weights.OpenNative(path)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	m := &refModel{cfg: n.Config(), t: map[string][]float64{}}
	for _, nt := range n.Tensors() {
		f, err := n.Float32(nt.Name)
		if err != nil {
			return nil, fmt.Errorf("reference: %s: %w", nt.Name, err)
		}
		d := make([]float64, len(f))
		for i, v := range f {
			d[i] = float64(v)
		}
		m.t[nt.Name] = d
	}
	return m, nil
}

// linear: y[o] = sum_i x[i] W[o, i] + b[o], W [out, in].
func linear(x, w, b []float64, out int) []float64 {
	in := len(x)
	y := make([]float64, out)
	for o := range out {
		s := b[o]
		for i := range in {
			s += x[i] * w[o*in+i]
		}
		y[o] = s
	}
	return y
}

func layerNorm(x, g, b []float64, eps float64) []float64 {
	var mean, vr float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		vr += (v - mean) * (v - mean)
	}
	vr /= float64(len(x))
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = (v-mean)/math.Sqrt(vr+eps)*g[i] + b[i]
	}
	return y
}

// forward returns the logit of one row of n real tokens. Padded keys carry
// no weight (exp(-10000 + s) underflows to 0 in float64 too), so only the
// real tokens are computed.
func (m *refModel) forward(ids, types []int32) float64 {
	c, t := m.cfg, m.t
	H, nh, n := c.HiddenSize, c.NumHeads, len(ids)
	hd := H / nh
	x := make([][]float64, n)
	for j := range n {
		e := make([]float64, H)
		for h := range H {
			e[h] = t["embeddings.word"][int(ids[j])*H+h] + t["embeddings.position"][j*H+h] +
				t["embeddings.token_type"][int(types[j])*H+h]
		}
		x[j] = layerNorm(e, t["embeddings.ln.gamma"], t["embeddings.ln.beta"], c.LayerNormEps)
	}
	for l := range c.NumLayers {
		p := fmt.Sprintf("layer.%d.", l)
		qkv := make([][]float64, n)
		for j := range n {
			qkv[j] = linear(x[j], t[p+"qkv.weight"], t[p+"qkv.bias"], 3*H)
		}
		ctx := make([][]float64, n)
		for i := range n {
			ctx[i] = make([]float64, H)
			for hh := range nh {
				scores := make([]float64, n)
				mx := math.Inf(-1)
				for j := range n {
					var s float64
					for d := range hd {
						s += qkv[i][hh*hd+d] * qkv[j][H+hh*hd+d]
					}
					scores[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, scores[j])
				}
				var z float64
				for j := range n {
					scores[j] = math.Exp(scores[j] - mx)
					z += scores[j]
				}
				for j := range n {
					for d := range hd {
						ctx[i][hh*hd+d] += scores[j] / z * qkv[j][2*H+hh*hd+d]
					}
				}
			}
		}
		for j := range n {
			a := linear(ctx[j], t[p+"attn_out.weight"], t[p+"attn_out.bias"], H)
			for h := range H {
				a[h] += x[j][h]
			}
			x1 := layerNorm(a, t[p+"attn_ln.gamma"], t[p+"attn_ln.beta"], c.LayerNormEps)
			up := linear(x1, t[p+"ffn_up.weight"], t[p+"ffn_up.bias"], c.IntermediateSize)
			for k, v := range up {
				up[k] = 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
			}
			down := linear(up, t[p+"ffn_down.weight"], t[p+"ffn_down.bias"], H)
			for h := range H {
				down[h] += x1[h]
			}
			x[j] = layerNorm(down, t[p+"ffn_ln.gamma"], t[p+"ffn_ln.beta"], c.LayerNormEps)
		}
	}
	pooled := linear(x[0], t["pooler.weight"], t["pooler.bias"], H)
	for h := range pooled {
		pooled[h] = math.Tanh(pooled[h])
	}
	return linear(pooled, t["classifier.weight"], t["classifier.bias"], 1)[0]
}

// logits runs forward on every row of in.
func (m *refModel) logits(in batchInput) []float64 {
	out := make([]float64, in.batch)
	for b := range in.batch {
		n := int(in.lengths[b])
		out[b] = m.forward(in.ids[b*in.seq:b*in.seq+n], in.types[b*in.seq:b*in.seq+n])
	}
	return out
}
