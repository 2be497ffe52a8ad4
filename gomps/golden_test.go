//go:build cgo

package gomps

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/internal/engine"
	"github.com/gomps/gomps/weights"
)

// goldenBound is the CPU fp32 tolerance against the PyTorch goldens
// (docs/ARCHITECTURE.md, Tolerances).
const goldenBound = 1e-4

// scoreCases scores every case through the engine. It bypasses Score's
// empty-query check: the goldens include empty queries on purpose.
func scoreCases(t testing.TB, r *Reranker, cases []goldenCase) []float32 {
	t.Helper()
	pairs := make([]Pair, len(cases))
	for i, c := range cases {
		pairs[i] = Pair{c.Query, c.Passage}
	}
	var jobs []job
	byQuery := map[string]int{}
	for i, p := range pairs {
		j, ok := byQuery[p.Query]
		if !ok {
			j = len(jobs)
			byQuery[p.Query] = j
			jobs = append(jobs, job{query: p.Query})
		}
		jobs[j].passages = append(jobs[j].passages, p.Passage)
		jobs[j].index = append(jobs[j].index, i)
	}
	res, err := r.run(context.Background(), jobs, len(pairs), engine.Call{})
	require.NoError(t, err)
	require.Len(t, res.Scores, len(cases))
	return res.Scores
}

// maxGoldenDiff returns the largest |got - golden| and its case index.
func maxGoldenDiff(cases []goldenCase, got []float32) (float64, int) {
	worst, at := 0.0, -1
	for i, c := range cases {
		d := math.Abs(float64(got[i]) - c.Logit)
		if math.IsNaN(d) || d > worst {
			worst, at = d, i
			if math.IsNaN(d) {
				worst = math.Inf(1)
			}
		}
	}
	return worst, at
}

func checkGoldens(t *testing.T, r *Reranker, cases []goldenCase) []float32 {
	t.Helper()
	got := scoreCases(t, r, cases)
	bad := 0
	for i, c := range cases {
		if d := math.Abs(float64(got[i]) - c.Logit); !(d <= goldenBound) {
			bad++
			if bad <= 20 {
				t.Errorf("%s: logit %v, golden %v, |diff| %.3g > %g", c.id(i), got[i], c.Logit, d, goldenBound)
			}
		}
	}
	worst, at := maxGoldenDiff(cases, got)
	assert.Zero(t, bad, "cases outside %g", goldenBound)
	checkRankOrder(t, cases, got)
	t.Logf("%d cases, max |logit - golden| = %.3g (%s)", len(cases), worst, cases[at].id(at))
	return got
}

// checkRankOrder compares, per query, the ranking of its real pairs: every
// two pairs whose golden logits differ by more than twice the bound must be
// in the golden order (closer ones may swap within the tolerance).
func checkRankOrder(t *testing.T, cases []goldenCase, got []float32) {
	t.Helper()
	groups := map[string][]int{}
	for i, c := range cases {
		if c.Transform == "none" {
			k := c.File + "/" + c.QID
			groups[k] = append(groups[k], i)
		}
	}
	checked, bad := 0, 0
	for k, idx := range groups {
		for a := range idx {
			for b := a + 1; b < len(idx); b++ {
				i, j := idx[a], idx[b]
				dg := cases[i].Logit - cases[j].Logit
				if math.Abs(dg) <= 2*goldenBound {
					continue
				}
				checked++
				if dg*(float64(got[i])-float64(got[j])) <= 0 {
					bad++
					t.Errorf("query %s: %s and %s ranked against the goldens", k, cases[i].id(i), cases[j].id(j))
				}
			}
		}
	}
	t.Logf("ranking order: %d pairs of pairs over %d queries checked, %d swapped", checked, len(groups), bad)
}

// TestGoldenTiny: the tiny model (converted from testdata/tiny in the test)
// gives every golden logit within 1e-4.
func TestGoldenTiny(t *testing.T) {
	cases := loadGoldens(t, "tiny", true)
	r := openTiny(t, WithInstances(2), WithThreads(2))
	checkGoldens(t, r, cases)
}

// TestGoldenTestModel: the real-shape test model gives every golden logit
// within 1e-4, and its logits on real pairs spread with 1 <= std <= 3 (so a
// model that outputs a near-constant cannot pass by luck).
func TestGoldenTestModel(t *testing.T) {
	path := testModelPath(t)
	cases := loadGoldens(t, "testmodel", true)
	r, err := Open(context.Background(), path)
	require.NoError(t, err)
	defer r.Close()
	got := checkGoldens(t, r, cases)
	var real []float64
	for i, c := range cases {
		if c.Transform == "none" {
			real = append(real, float64(got[i]))
		}
	}
	if len(real) == 0 {
		real = make([]float64, len(got))
		for i, x := range got {
			real[i] = float64(x)
		}
	}
	sd := stddev(real)
	t.Logf("std of %d logits: %.4f", len(real), sd)
	assert.GreaterOrEqual(t, sd, 1.0, "std(logits)")
	assert.LessOrEqual(t, sd, 3.0, "std(logits)")
}

func stddev(xs []float64) float64 {
	var mean float64
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(xs)))
}

// TestGoldenSensitivity shows the golden bound has teeth: seeded noise of
// 1e-3 x RMS on ONE tensor of each kind, in the first and the last layer,
// must move some golden logit by more than 1e-4. Each perturbed model is a
// copy of the native file with that tensor's bytes replaced and its CRC-32C
// and the header CRC recomputed (FORMAT.md), validated by
// weights.OpenNative, then loaded by the backend. The short synthetic
// golden cases run as one padded batch per model; the unperturbed file must
// stay within the bound on the same path first.
func TestGoldenSensitivity(t *testing.T) {
	for _, m := range []struct {
		name, golden string
		path         func(testing.TB) string
	}{
		{"model=tiny", "tiny", tinyModelPath},
		{"model=testmodel", "testmodel", testModelPath},
	} {
		t.Run(m.name, func(t *testing.T) {
			base := m.path(t)
			var cases []goldenCase
			for _, c := range loadGoldens(t, m.golden, false) { // synthetic: no shared data needed
				if c.Len <= 64 {
					cases = append(cases, c)
				}
			}
			require.GreaterOrEqual(t, len(cases), 8, "short synthetic cases")
			batch := newGoldenBatch(t, cases)
			score := func(t *testing.T, path string) float64 {
				mdl, err := loadModel(path, "f32", len(cases), batch.seq)
				require.NoError(t, err)
				defer mdl.Close()
				c, err := mdl.NewContext(0)
				require.NoError(t, err)
				defer c.Close()
				logits := make([]float32, len(cases))
				require.NoError(t, c.Forward(len(cases), batch.seq, batch.ids, batch.types, batch.lengths, logits))
				worst, _ := maxGoldenDiff(cases, logits)
				return worst
			}
			require.LessOrEqual(t, score(t, base), goldenBound, "unperturbed model, one padded batch")

			n, err := weights.OpenNative(base)
			require.NoError(t, err)
			L := n.Config().NumLayers
			targets := []string{"embeddings.word", "embeddings.ln.gamma"}
			for _, l := range []int{0, L - 1} {
				for _, k := range []string{"qkv.weight", "attn_out.weight", "ffn_up.weight", "ffn_down.weight", "attn_ln.gamma", "ffn_ln.gamma"} {
					targets = append(targets, fmt.Sprintf("layer.%d.%s", l, k))
				}
			}
			targets = append(targets, "pooler.weight", "classifier.weight")
			orig := map[string][]float32{}
			for _, name := range targets {
				orig[name], err = n.Float32(name)
				require.NoError(t, err, name)
			}
			require.NoError(t, n.Close())

			for k, name := range targets {
				t.Run("tensor="+name, func(t *testing.T) {
					v := orig[name]
					var ss float64
					for _, x := range v {
						ss += float64(x) * float64(x)
					}
					rms := math.Sqrt(ss / float64(len(v)))
					rng := rand.New(rand.NewPCG(20261127, uint64(k)))
					noisy := make([]byte, 4*len(v))
					for i, x := range v {
						binary.LittleEndian.PutUint32(noisy[4*i:], math.Float32bits(x+float32(1e-3*rms*rng.NormFloat64())))
					}
					path := filepath.Join(t.TempDir(), "perturbed.gomps")
					patchTensor(t, base, path, name, noisy)
					worst := score(t, path)
					t.Logf("max |logit - golden| = %.3g", worst)
					assert.Greater(t, worst, goldenBound, "noise of 1e-3 x RMS on %s must break the bound", name)
				})
			}
		})
	}
}

// goldenBatch is a set of cases tokenized and padded into one batch.
type goldenBatch struct {
	seq                 int
	ids, types, lengths []int32
}

func newGoldenBatch(t testing.TB, cases []goldenCase) goldenBatch {
	t.Helper()
	tk := newTestTokenizer(t, tokenizerJSON(t))
	var rows [][2][]int32
	b := goldenBatch{}
	for i, c := range cases {
		q, err := tk.encode(c.Query)
		require.NoError(t, err)
		p, err := tk.encode(c.Passage)
		require.NoError(t, err)
		ids, types, _ := engine.AssemblePair(q, p, 512, tk.cls, tk.sep)
		require.Equal(t, c.IDsSHA256, idsSHA256(ids, types), c.id(i))
		rows = append(rows, [2][]int32{ids, types})
		b.seq = max(b.seq, len(ids))
	}
	b.ids = make([]int32, len(rows)*b.seq)
	b.types = make([]int32, len(rows)*b.seq)
	for r, row := range rows {
		copy(b.ids[r*b.seq:], row[0])
		copy(b.types[r*b.seq:], row[1])
		b.lengths = append(b.lengths, int32(len(row[0])))
	}
	return b
}

// patchTensor copies the F32 native file src to dst with tensor name's bytes
// replaced by data, its table CRC-32C and the header CRC recomputed
// (weights/FORMAT.md), and checks dst with weights.OpenNative.
func patchTensor(t testing.TB, src, dst, name string, data []byte) {
	t.Helper()
	raw, err := os.ReadFile(src)
	require.NoError(t, err)
	le := binary.LittleEndian
	require.Equal(t, uint32(0), le.Uint32(raw[32:]), "F32 file")
	hsize := int(le.Uint32(raw[12:]))
	n := int(le.Uint32(raw[36:]))
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	found := false
	for k := range n {
		e := raw[256+128*k : 256+128*(k+1)]
		if string(bytes.TrimRight(e[:64], "\x00")) != name {
			continue
		}
		off, size := le.Uint64(e[88:]), le.Uint64(e[96:])
		require.Equal(t, uint64(len(data)), size, "tensor size")
		copy(raw[off:off+size], data)
		le.PutUint32(e[104:], crc32.Checksum(data, castagnoli))
		found = true
	}
	require.True(t, found, "tensor %s in the table", name)
	le.PutUint32(raw[16:], 0)
	le.PutUint32(raw[16:], crc32.Checksum(raw[:hsize], castagnoli))
	require.NoError(t, os.WriteFile(dst, raw, 0o644))
	nf, err := weights.OpenNative(dst)
	require.NoError(t, err, "the patched file is valid")
	require.NoError(t, nf.Close())
}

// hfExport is a model's tensors by native name, plus what is needed to
// write it as a Hugging Face directory (the benchmark's random model).
type hfExport struct {
	cfg       weights.Config
	tokenizer []byte
	tensors   map[string][]float32
}

// hfName maps a native tensor (not qkv) to its Hugging Face name.
func hfName(native string) string {
	r := strings.NewReplacer(
		"embeddings.word", "bert.embeddings.word_embeddings.weight",
		"embeddings.position", "bert.embeddings.position_embeddings.weight",
		"embeddings.token_type", "bert.embeddings.token_type_embeddings.weight",
		"embeddings.ln.gamma", "bert.embeddings.LayerNorm.weight",
		"embeddings.ln.beta", "bert.embeddings.LayerNorm.bias",
		"pooler.weight", "bert.pooler.dense.weight",
		"pooler.bias", "bert.pooler.dense.bias",
	)
	if strings.HasPrefix(native, "classifier.") {
		return native
	}
	if l, rest, ok := strings.Cut(strings.TrimPrefix(native, "layer."), "."); ok && strings.HasPrefix(native, "layer.") {
		m := map[string]string{
			"attn_out.weight": "attention.output.dense.weight", "attn_out.bias": "attention.output.dense.bias",
			"attn_ln.gamma": "attention.output.LayerNorm.weight", "attn_ln.beta": "attention.output.LayerNorm.bias",
			"ffn_up.weight": "intermediate.dense.weight", "ffn_up.bias": "intermediate.dense.bias",
			"ffn_down.weight": "output.dense.weight", "ffn_down.bias": "output.dense.bias",
			"ffn_ln.gamma": "output.LayerNorm.weight", "ffn_ln.beta": "output.LayerNorm.bias",
		}
		return "bert.encoder.layer." + l + "." + m[rest]
	}
	return r.Replace(native)
}

// writeDir writes tensors (by native name) as a Hugging Face directory:
// config.json, model.safetensors (F32, Q/K/V split again) and tokenizer.json.
func (e *hfExport) writeDir(t testing.TB, dir string, tensors map[string][]float32) {
	t.Helper()
	c := e.cfg
	config := map[string]any{
		"architectures": []string{"BertForSequenceClassification"}, "model_type": "bert",
		"vocab_size": c.VocabSize, "hidden_size": c.HiddenSize, "num_hidden_layers": c.NumLayers,
		"num_attention_heads": c.NumHeads, "intermediate_size": c.IntermediateSize,
		"max_position_embeddings": c.MaxPosition, "type_vocab_size": c.TypeVocabSize,
		"layer_norm_eps": c.LayerNormEps, "pad_token_id": c.PadTokenID, "hidden_act": "gelu",
		"position_embedding_type": "absolute", "id2label": map[string]string{"0": "LABEL_0"},
	}
	cj, err := json.Marshal(config)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), e.tokenizer, 0o644))

	f32 := func(v []float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	var out []weights.STWrite
	H := c.HiddenSize
	for _, s := range c.Tensors() {
		v := tensors[s.Name]
		shape := make([]int64, len(s.Shape))
		for i, d := range s.Shape {
			shape[i] = int64(d)
		}
		if l, ok := strings.CutSuffix(s.Name, ".qkv.weight"); ok {
			p := "bert.encoder.layer." + strings.TrimPrefix(l, "layer.") + ".attention.self."
			for k, part := range []string{"query", "key", "value"} {
				out = append(out, weights.STWrite{Name: p + part + ".weight", DType: "F32", Shape: []int64{int64(H), int64(H)}, Data: f32(v[k*H*H : (k+1)*H*H])})
			}
			continue
		}
		if l, ok := strings.CutSuffix(s.Name, ".qkv.bias"); ok {
			p := "bert.encoder.layer." + strings.TrimPrefix(l, "layer.") + ".attention.self."
			for k, part := range []string{"query", "key", "value"} {
				out = append(out, weights.STWrite{Name: p + part + ".bias", DType: "F32", Shape: []int64{int64(H)}, Data: f32(v[k*H : (k+1)*H])})
			}
			continue
		}
		out = append(out, weights.STWrite{Name: hfName(s.Name), DType: "F32", Shape: shape, Data: f32(v)})
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	require.NoError(t, weights.WriteSafetensors(w, out, map[string]string{"format": "pt"}))
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}
