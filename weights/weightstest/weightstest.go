// Package weightstest builds small synthetic Hugging Face model directories
// and head files with seeded random weights, for tests of the weights
// package, the converter and the library. The output is deterministic for a
// given Options.
package weightstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/gomps/gomps/weights"
)

// TinyConfig is a 2-layer, hidden-32 BERT over a 64-token vocabulary.
func TinyConfig() weights.Config {
	return weights.Config{VocabSize: 64, HiddenSize: 32, NumLayers: 2, NumHeads: 2, IntermediateSize: 64,
		MaxPosition: 40, TypeVocabSize: 2, PadTokenID: 0, LayerNormEps: 1e-12}
}

// Options describes a synthetic model directory.
type Options struct {
	Config weights.Config
	Seed   uint64
	// DType of the stored tensors: weights.F32 (default), F16 or BF16.
	DType weights.DType
	// Architecture in config.json: "BertForSequenceClassification" (default:
	// bert.-prefixed names plus classifier) or "BertModel" (bare names, a
	// pooler, no classifier).
	Architecture string
	// GammaBeta names LayerNorm parameters .gamma/.beta instead of
	// .weight/.bias.
	GammaBeta bool
	// PositionIDs adds the I64 embeddings.position_ids buffer real files carry.
	PositionIDs bool
	// ConfigOverride is merged into config.json (a nil value deletes a key).
	ConfigOverride map[string]any
	// Tokenizer is written as tokenizer.json; nil writes Tokenizer(); empty
	// writes none.
	Tokenizer []byte
	// Skip leaves out these Hugging Face tensor names (after any prefix).
	Skip []string
	// Extra adds tensors as they are.
	Extra []weights.STWrite
}

// Tokenizer returns a small deterministic tokenizer.json object.
func Tokenizer() []byte {
	return []byte(`{"version":"1.0","model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3}}}`)
}

// ConfigJSON returns the config.json map for o.
func ConfigJSON(o Options) map[string]any {
	c := o.Config
	arch := o.Architecture
	if arch == "" {
		arch = "BertForSequenceClassification"
	}
	m := map[string]any{
		"architectures":                []string{arch},
		"model_type":                   "bert",
		"vocab_size":                   c.VocabSize,
		"hidden_size":                  c.HiddenSize,
		"num_hidden_layers":            c.NumLayers,
		"num_attention_heads":          c.NumHeads,
		"intermediate_size":            c.IntermediateSize,
		"hidden_act":                   "gelu",
		"max_position_embeddings":      c.MaxPosition,
		"type_vocab_size":              c.TypeVocabSize,
		"layer_norm_eps":               c.LayerNormEps,
		"pad_token_id":                 c.PadTokenID,
		"position_embedding_type":      "absolute",
		"attention_probs_dropout_prob": 0.1,
	}
	if arch == "BertForSequenceClassification" {
		m["id2label"] = map[string]string{"0": "LABEL_0"}
		m["label2id"] = map[string]int{"LABEL_0": 0}
	}
	for k, v := range o.ConfigOverride {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// Tensor is one synthetic tensor.
type Tensor struct {
	Shape  []int64
	Values []float32
}

// Tensors returns the Hugging Face tensors of o, names without the bert.
// prefix.
func Tensors(o Options) map[string]Tensor {
	c := o.Config
	r := rand.New(rand.NewPCG(o.Seed, 0x676f6d7073))
	out := map[string]Tensor{}
	h, in := int64(c.HiddenSize), int64(c.IntermediateSize)
	v, p, t := int64(c.VocabSize), int64(c.MaxPosition), int64(c.TypeVocabSize)
	w, b := "weight", "bias"
	if o.GammaBeta {
		w, b = "gamma", "beta"
	}
	mat := func(name string, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.05)
		}
		out[name] = Tensor{shape, v}
	}
	ln := func(p string) {
		g := make([]float32, h)
		be := make([]float32, h)
		for i := range g {
			g[i] = float32(1 + r.NormFloat64()*0.05)
			be[i] = float32(r.NormFloat64() * 0.02)
		}
		out[p+".LayerNorm."+w] = Tensor{[]int64{int64(h)}, g}
		out[p+".LayerNorm."+b] = Tensor{[]int64{int64(h)}, be}
	}
	mat("embeddings.word_embeddings.weight", v, h)
	mat("embeddings.position_embeddings.weight", p, h)
	mat("embeddings.token_type_embeddings.weight", t, h)
	ln("embeddings")
	for l := range c.NumLayers {
		p := "encoder.layer." + strconv.Itoa(l) + "."
		for _, q := range []string{"query", "key", "value"} {
			mat(p+"attention.self."+q+".weight", h, h)
			mat(p+"attention.self."+q+".bias", h)
		}
		mat(p+"attention.output.dense.weight", h, h)
		mat(p+"attention.output.dense.bias", h)
		ln(p + "attention.output")
		mat(p+"intermediate.dense.weight", in, h)
		mat(p+"intermediate.dense.bias", in)
		mat(p+"output.dense.weight", h, in)
		mat(p+"output.dense.bias", h)
		ln(p + "output")
	}
	mat("pooler.dense.weight", h, h)
	mat("pooler.dense.bias", h)
	mat("classifier.weight", 1, h)
	mat("classifier.bias", 1)
	return out
}

// WriteHFDir writes config.json, model.safetensors and tokenizer.json for o
// into dir, and returns the tensors written (names as in the file).
func WriteHFDir(dir string, o Options) (map[string]Tensor, error) {
	arch := o.Architecture
	if arch == "" {
		arch = "BertForSequenceClassification"
	}
	cj, err := json.MarshalIndent(ConfigJSON(o), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644); err != nil {
		return nil, err
	}
	tok := o.Tokenizer
	if tok == nil {
		tok = Tokenizer()
	}
	if len(tok) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
			return nil, err
		}
	}
	all := Tensors(o)
	skip := map[string]bool{}
	for _, s := range o.Skip {
		skip[s] = true
	}
	written := map[string]Tensor{}
	var st []weights.STWrite
	for _, name := range sortedKeys(all) {
		if skip[name] {
			continue
		}
		full := name
		if arch == "BertForSequenceClassification" {
			if name == "classifier.weight" || name == "classifier.bias" {
				full = name
			} else {
				full = "bert." + name
			}
		} else if name == "classifier.weight" || name == "classifier.bias" {
			continue
		}
		data, err := weights.EncodeFloat32(all[name].Values, o.DType)
		if err != nil {
			return nil, err
		}
		st = append(st, weights.STWrite{Name: full, DType: o.DType.String(), Shape: all[name].Shape, Data: data})
		written[full] = all[name]
	}
	if o.PositionIDs {
		var buf bytes.Buffer
		for i := range o.Config.MaxPosition {
			var b [8]byte
			b[0], b[1], b[2] = byte(i), byte(i>>8), byte(i>>16)
			buf.Write(b[:])
		}
		name := "embeddings.position_ids"
		if arch == "BertForSequenceClassification" {
			name = "bert." + name
		}
		st = append(st, weights.STWrite{Name: name, DType: "I64", Shape: []int64{1, int64(o.Config.MaxPosition)}, Data: buf.Bytes()})
	}
	st = append(st, o.Extra...)
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	if err := weights.WriteSafetensors(f, st, map[string]string{"format": "pt"}); err != nil {
		f.Close()
		return nil, err
	}
	return written, f.Close()
}

// WriteHead writes a head file (pooler.dense.*, classifier.*) with seeded
// random F32 weights for hidden size h, and returns its tensors.
func WriteHead(path string, h int, seed uint64) (map[string][]float32, error) {
	r := rand.New(rand.NewPCG(seed, 0x68656164))
	vals := map[string][]float32{
		"pooler.dense.weight": make([]float32, h*h),
		"pooler.dense.bias":   make([]float32, h),
		"classifier.weight":   make([]float32, h),
		"classifier.bias":     make([]float32, 1),
	}
	shapes := map[string][]int64{
		"pooler.dense.weight": {int64(h), int64(h)},
		"pooler.dense.bias":   {int64(h)},
		"classifier.weight":   {1, int64(h)},
		"classifier.bias":     {1},
	}
	var st []weights.STWrite
	for _, name := range sortedKeys(vals) {
		v := vals[name]
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.1)
		}
		data, err := weights.EncodeFloat32(v, weights.F32)
		if err != nil {
			return nil, err
		}
		st = append(st, weights.STWrite{Name: name, DType: "F32", Shape: shapes[name], Data: data})
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := weights.WriteSafetensors(f, st, nil); err != nil {
		f.Close()
		return nil, fmt.Errorf("weightstest: %w", err)
	}
	return vals, f.Close()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
