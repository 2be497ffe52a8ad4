package weights

import (
	"fmt"
	"math"
	"strconv"
)

// Config is the shape of a BertForSequenceClassification cross-encoder with
// one label, absolute positions and erf GELU: the only model format v1 holds.
// It is shared by the Hugging Face loader, the native writer and reader.
type Config struct {
	VocabSize        int     // V
	HiddenSize       int     // H, a multiple of NumHeads
	NumLayers        int     // L
	NumHeads         int     // attention heads
	IntermediateSize int     // I, the FFN width
	MaxPosition      int     // P, max_position_embeddings
	TypeVocabSize    int     // T
	PadTokenID       int     // < VocabSize
	LayerNormEps     float64 // finite, in (0, 1)
}

// HeadDim returns HiddenSize / NumHeads.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumHeads }

// Validate checks every field against the ranges of FORMAT.md.
func (c Config) Validate() error {
	if field, detail := c.check(); field != "" {
		return fmt.Errorf("%s %s", field, detail)
	}
	return nil
}

// check returns the first field out of range and why, or "".
func (c Config) check() (field, detail string) {
	ints := []struct {
		name      string
		v, lo, hi int
	}{
		{"vocab_size", c.VocabSize, 1, 1_000_000},
		{"hidden_size", c.HiddenSize, 1, 8192},
		{"num_layers", c.NumLayers, 1, 128},
		{"num_heads", c.NumHeads, 1, 256},
		{"intermediate_size", c.IntermediateSize, 1, 65536},
		{"max_position", c.MaxPosition, 3, 65536},
		{"type_vocab_size", c.TypeVocabSize, 2, 16},
	}
	for _, f := range ints {
		if f.v < f.lo || f.v > f.hi {
			return f.name, fmt.Sprintf("= %d, want %d .. %d", f.v, f.lo, f.hi)
		}
	}
	if c.HiddenSize%c.NumHeads != 0 {
		return "hidden_size", fmt.Sprintf("= %d, not a multiple of num_heads %d", c.HiddenSize, c.NumHeads)
	}
	if c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize {
		return "pad_token_id", fmt.Sprintf("= %d, want 0 .. %d", c.PadTokenID, c.VocabSize-1)
	}
	if e := c.LayerNormEps; math.IsNaN(e) || math.IsInf(e, 0) || e <= 0 || e >= 1 {
		return "layer_norm_eps", fmt.Sprintf("= %v, want finite, > 0 and < 1", e)
	}
	return "", ""
}

// TensorSpec is one tensor of the native format: its name and shape, in the
// order of FORMAT.md.
type TensorSpec struct {
	Name  string
	Shape []int // 1 or 2 dimensions
}

// Elems returns the number of elements.
func (s TensorSpec) Elems() int {
	n := 1
	for _, d := range s.Shape {
		n *= d
	}
	return n
}

// NumTensors returns 12 * NumLayers + 9.
func (c Config) NumTensors() int { return 12*c.NumLayers + 9 }

// Tensors returns the tensor table of the native format for c, in file order.
// c must be valid.
func (c Config) Tensors() []TensorSpec {
	h, i := c.HiddenSize, c.IntermediateSize
	out := make([]TensorSpec, 0, c.NumTensors())
	add := func(name string, shape ...int) { out = append(out, TensorSpec{name, shape}) }
	add("embeddings.word", c.VocabSize, h)
	add("embeddings.position", c.MaxPosition, h)
	add("embeddings.token_type", c.TypeVocabSize, h)
	add("embeddings.ln.gamma", h)
	add("embeddings.ln.beta", h)
	for l := range c.NumLayers {
		p := "layer." + strconv.Itoa(l) + "."
		add(p+"qkv.weight", 3*h, h)
		add(p+"qkv.bias", 3*h)
		add(p+"attn_out.weight", h, h)
		add(p+"attn_out.bias", h)
		add(p+"attn_ln.gamma", h)
		add(p+"attn_ln.beta", h)
		add(p+"ffn_up.weight", i, h)
		add(p+"ffn_up.bias", i)
		add(p+"ffn_down.weight", h, i)
		add(p+"ffn_down.bias", h)
		add(p+"ffn_ln.gamma", h)
		add(p+"ffn_ln.beta", h)
	}
	add("pooler.weight", h, h)
	add("pooler.bias", h)
	add("classifier.weight", 1, h)
	add("classifier.bias", 1)
	return out
}
