package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MaxTokenizerSize bounds tokenizer.json (FORMAT.md: 1 .. 64 MiB).
const MaxTokenizerSize = 64 << 20

// maxConfigSize bounds config.json.
const maxConfigSize = 1 << 20

// Model is a Hugging Face model directory loaded and checked by LoadHFDir:
// its config, and for every tensor of the native format where its data is.
// Tensor data is read only by WriteNative. Close releases the files.
type Model struct {
	Config       Config
	Dir          string // the model directory
	Architecture string // "BertForSequenceClassification" or "BertModel" (with a head)
	Safetensors  string // path of model.safetensors
	HeadPath     string // path of the head file, "" when none
	Tokenizer    []byte // tokenizer.json, nil when the directory has none

	st, head *Safetensors
	sources  [][]tensorPart // per Config.Tensors() entry, the parts concatenated by rows
}

var _ io.Closer = (*Model)(nil)

// tensorPart is one source tensor of a native tensor.
type tensorPart struct {
	file *Safetensors
	name string
}

type loadOptions struct {
	head      string
	tokenizer string
}

// LoadOption configures LoadHFDir.
type LoadOption func(*loadOptions)

// WithHead takes the pooler.* and classifier.* tensors from the safetensors
// file at path instead of the model directory. Names may carry the `bert.`
// prefix or not (classifier.* never has it). This turns a BertModel encoder
// into a BertForSequenceClassification with one label.
func WithHead(path string) LoadOption { return func(o *loadOptions) { o.head = path } }

// WithTokenizer reads tokenizer.json from path instead of the model
// directory.
func WithTokenizer(path string) LoadOption { return func(o *loadOptions) { o.tokenizer = path } }

// hfConfig holds the config.json fields that matter; absent fields take
// transformers' BertConfig defaults.
type hfConfig struct {
	Architectures         []string          `json:"architectures"`
	ModelType             string            `json:"model_type"`
	VocabSize             *int              `json:"vocab_size"`
	HiddenSize            *int              `json:"hidden_size"`
	NumHiddenLayers       *int              `json:"num_hidden_layers"`
	NumAttentionHeads     *int              `json:"num_attention_heads"`
	IntermediateSize      *int              `json:"intermediate_size"`
	HiddenAct             *string           `json:"hidden_act"`
	MaxPositionEmbeddings *int              `json:"max_position_embeddings"`
	TypeVocabSize         *int              `json:"type_vocab_size"`
	LayerNormEps          *float64          `json:"layer_norm_eps"`
	PadTokenID            *int              `json:"pad_token_id"`
	PositionEmbeddingType *string           `json:"position_embedding_type"`
	NumLabels             *int              `json:"num_labels"`
	ID2Label              map[string]string `json:"id2label"`
	IsDecoder             bool              `json:"is_decoder"`
	AddCrossAttention     bool              `json:"add_cross_attention"`
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// parseHFConfig reads config.json and rejects, by name and reason, anything
// that is not a BERT with absolute positions and erf GELU. It returns the
// architecture and the number of labels the config declares.
func parseHFConfig(path string) (Config, string, int, error) {
	fail := func(field string, rule error, format string, args ...any) error {
		return &Error{File: path, Field: field, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	raw, err := readBounded(path, maxConfigSize)
	if err != nil {
		return Config{}, "", 0, fmt.Errorf("weights: %w", err)
	}
	var hc hfConfig
	if err := json.Unmarshal(raw, &hc); err != nil {
		return Config{}, "", 0, fail("", ErrUnsupportedModel, "not a valid config.json: %v", err)
	}
	if len(hc.Architectures) != 1 {
		return Config{}, "", 0, fail("architectures", ErrUnsupportedModel,
			"%q: gomps runs exactly one architecture, BertForSequenceClassification (or a BertModel encoder plus a head file)", hc.Architectures)
	}
	arch := hc.Architectures[0]
	if arch != "BertForSequenceClassification" && arch != "BertModel" {
		return Config{}, "", 0, fail("architectures", ErrUnsupportedModel,
			"%s is not supported: gomps runs BertForSequenceClassification cross-encoders (or a BertModel encoder plus a head file)", arch)
	}
	if hc.ModelType != "bert" {
		return Config{}, "", 0, fail("model_type", ErrUnsupportedModel, "%q is not supported: want \"bert\"", hc.ModelType)
	}
	if act := orDefault(hc.HiddenAct, "gelu"); act != "gelu" {
		return Config{}, "", 0, fail("hidden_act", ErrUnsupportedModel,
			"%q is not supported: format v1 computes the exact erf GELU (\"gelu\") only", act)
	}
	if pe := orDefault(hc.PositionEmbeddingType, "absolute"); pe != "absolute" {
		return Config{}, "", 0, fail("position_embedding_type", ErrUnsupportedModel,
			"%q is not supported: format v1 has absolute position embeddings only", pe)
	}
	if hc.IsDecoder || hc.AddCrossAttention {
		return Config{}, "", 0, fail("is_decoder", ErrUnsupportedModel, "a decoder BERT is not supported: gomps runs an encoder only")
	}
	labels := 2 // transformers' default without id2label or num_labels
	if len(hc.ID2Label) > 0 {
		labels = len(hc.ID2Label)
	} else if hc.NumLabels != nil {
		labels = *hc.NumLabels
	}
	cfg := Config{
		VocabSize:        orDefault(hc.VocabSize, 30522),
		HiddenSize:       orDefault(hc.HiddenSize, 768),
		NumLayers:        orDefault(hc.NumHiddenLayers, 12),
		NumHeads:         orDefault(hc.NumAttentionHeads, 12),
		IntermediateSize: orDefault(hc.IntermediateSize, 3072),
		MaxPosition:      orDefault(hc.MaxPositionEmbeddings, 512),
		TypeVocabSize:    orDefault(hc.TypeVocabSize, 2),
		PadTokenID:       orDefault(hc.PadTokenID, 0),
		LayerNormEps:     orDefault(hc.LayerNormEps, 1e-12),
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, "", 0, fail("", ErrUnsupportedModel, "%v", err)
	}
	return cfg, arch, labels, nil
}

// LoadHFDir loads a Hugging Face model directory: config.json,
// model.safetensors (F32, F16 or BF16) and, when present, tokenizer.json.
// Shapes come from config.json. Tensor names may carry the `bert.` prefix of
// BertForSequenceClassification or be the bare names of BertModel;
// LayerNorm parameters may be .weight/.bias or .gamma/.beta. Every tensor is
// checked for dtype and shape; tensors the model does not use (other than the
// position_ids and token_type_ids buffers) are an error. Only the headers are
// read here.
func LoadHFDir(dir string, opts ...LoadOption) (*Model, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	cfgPath := filepath.Join(dir, "config.json")
	cfg, arch, labels, err := parseHFConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	if arch == "BertForSequenceClassification" && labels != 1 && o.head == "" {
		return nil, &Error{File: cfgPath, Field: "id2label", Rule: ErrUnsupportedModel,
			Detail: fmt.Sprintf("BertForSequenceClassification with %d labels is not supported: gomps scores with exactly 1 label (a relevance logit)", labels)}
	}
	if arch == "BertModel" && o.head == "" {
		return nil, &Error{File: cfgPath, Field: "architectures", Rule: ErrNeedHead,
			Detail: "a BertModel encoder has no pooler/classifier for scoring; give a head safetensors file (WithHead, --head) holding pooler.dense.* and classifier.* [1, hidden]"}
	}
	stPath := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(stPath); err != nil {
		for _, other := range []string{"model.safetensors.index.json", "pytorch_model.bin"} {
			if _, e := os.Stat(filepath.Join(dir, other)); e == nil {
				return nil, fmt.Errorf("weights: %s: only a single model.safetensors is supported, found %s (convert it to safetensors first)", dir, other)
			}
		}
		return nil, fmt.Errorf("weights: %w", err)
	}
	m := &Model{Config: cfg, Dir: dir, Architecture: arch, Safetensors: stPath, HeadPath: o.head}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	if m.st, err = OpenSafetensors(stPath); err != nil {
		return nil, err
	}
	if o.head != "" {
		if m.head, err = OpenSafetensors(o.head); err != nil {
			return nil, err
		}
	}
	if err := m.resolve(); err != nil {
		return nil, err
	}
	tokPath := o.tokenizer
	if tokPath == "" {
		tokPath = filepath.Join(dir, "tokenizer.json")
		if _, err := os.Stat(tokPath); err != nil {
			tokPath = ""
		}
	}
	if tokPath != "" {
		if m.Tokenizer, err = readTokenizer(tokPath); err != nil {
			return nil, err
		}
	}
	ok = true
	return m, nil
}

// readTokenizer reads tokenizer.json, bounded to 64 MiB, and checks it is a
// JSON object.
func readTokenizer(path string) ([]byte, error) {
	b, err := readBounded(path, MaxTokenizerSize)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if len(b) == 0 || !json.Valid(b) || b[0] != '{' {
		return nil, fmt.Errorf("weights: %s: tokenizer.json is not a JSON object", path)
	}
	return b, nil
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// resolve maps every native tensor to its source tensors and checks dtypes
// and shapes.
func (m *Model) resolve() error {
	c := m.Config
	prefix, err := bertPrefix(m.st)
	if err != nil {
		return err
	}
	used := map[*Safetensors]map[string]bool{m.st: {}}
	if m.head != nil {
		used[m.head] = map[string]bool{}
	}
	// find locates one source tensor with the given shape. alts are name
	// spellings (without prefix) tried in order; more than one present is
	// ambiguous.
	find := func(f *Safetensors, prefixes []string, shape []int, alts ...string) (tensorPart, error) {
		var found []string
		for _, p := range prefixes {
			for _, a := range alts {
				if _, ok := f.Info(p + a); ok {
					found = append(found, p+a)
				}
			}
		}
		switch len(found) {
		case 0:
			return tensorPart{}, &Error{File: f.Path(), Tensor: prefixes[0] + alts[0], Rule: ErrMissingTensor}
		case 1:
		default:
			return tensorPart{}, &Error{File: f.Path(), Tensor: found[0], Rule: ErrUnexpectedTensor,
				Detail: fmt.Sprintf("ambiguous: both %q and %q present", found[0], found[1])}
		}
		t, _ := f.Info(found[0])
		if t.DType != "F32" && t.DType != "F16" && t.DType != "BF16" {
			return tensorPart{}, &Error{File: f.Path(), Tensor: t.Name, Rule: ErrSTUnsupportedType, Detail: t.DType}
		}
		if !sameShape(t.Shape, shape) {
			return tensorPart{}, &Error{File: f.Path(), Tensor: t.Name, Rule: ErrTensorShape,
				Detail: fmt.Sprintf("shape %v, want %v from config.json", t.Shape, shape)}
		}
		used[f][t.Name] = true
		return tensorPart{file: f, name: t.Name}, nil
	}
	enc := []string{prefix}
	headFile, headPrefixes, clsPrefixes := m.st, enc, []string{""}
	if m.head != nil {
		headFile, headPrefixes = m.head, []string{"", "bert."}
	}
	h, i := c.HiddenSize, c.IntermediateSize
	type src struct {
		file     *Safetensors
		prefixes []string
		shape    []int
		alts     []string
	}
	one := func(shape []int, alts ...string) []src { return []src{{m.st, enc, shape, alts}} }
	lnW := func(p string) []string { return []string{p + ".weight", p + ".gamma"} }
	lnB := func(p string) []string { return []string{p + ".bias", p + ".beta"} }
	var plan [][]src
	plan = append(plan,
		one([]int{c.VocabSize, h}, "embeddings.word_embeddings.weight"),
		one([]int{c.MaxPosition, h}, "embeddings.position_embeddings.weight"),
		one([]int{c.TypeVocabSize, h}, "embeddings.token_type_embeddings.weight"),
		one([]int{h}, lnW("embeddings.LayerNorm")...),
		one([]int{h}, lnB("embeddings.LayerNorm")...),
	)
	for l := range c.NumLayers {
		p := "encoder.layer." + strconv.Itoa(l) + "."
		plan = append(plan,
			[]src{
				{m.st, enc, []int{h, h}, []string{p + "attention.self.query.weight"}},
				{m.st, enc, []int{h, h}, []string{p + "attention.self.key.weight"}},
				{m.st, enc, []int{h, h}, []string{p + "attention.self.value.weight"}},
			},
			[]src{
				{m.st, enc, []int{h}, []string{p + "attention.self.query.bias"}},
				{m.st, enc, []int{h}, []string{p + "attention.self.key.bias"}},
				{m.st, enc, []int{h}, []string{p + "attention.self.value.bias"}},
			},
			one([]int{h, h}, p+"attention.output.dense.weight"),
			one([]int{h}, p+"attention.output.dense.bias"),
			one([]int{h}, lnW(p+"attention.output.LayerNorm")...),
			one([]int{h}, lnB(p+"attention.output.LayerNorm")...),
			one([]int{i, h}, p+"intermediate.dense.weight"),
			one([]int{i}, p+"intermediate.dense.bias"),
			one([]int{h, i}, p+"output.dense.weight"),
			one([]int{h}, p+"output.dense.bias"),
			one([]int{h}, lnW(p+"output.LayerNorm")...),
			one([]int{h}, lnB(p+"output.LayerNorm")...),
		)
	}
	plan = append(plan,
		[]src{{headFile, headPrefixes, []int{h, h}, []string{"pooler.dense.weight"}}},
		[]src{{headFile, headPrefixes, []int{h}, []string{"pooler.dense.bias"}}},
		[]src{{headFile, clsPrefixes, []int{1, h}, []string{"classifier.weight"}}},
		[]src{{headFile, clsPrefixes, []int{1}, []string{"classifier.bias"}}},
	)
	m.sources = make([][]tensorPart, len(plan))
	for k, parts := range plan {
		for _, s := range parts {
			tp, err := find(s.file, s.prefixes, s.shape, s.alts...)
			if err != nil {
				if m.head == nil && errors.Is(err, ErrMissingTensor) && strings.HasPrefix(s.alts[0], "classifier.") {
					return &Error{File: s.file.Path(), Tensor: s.alts[0], Rule: ErrNeedHead,
						Detail: "the model has no classifier; give a head safetensors file (WithHead, --head)"}
				}
				return err
			}
			m.sources[k] = append(m.sources[k], tp)
		}
	}
	// Everything else is unexpected, except buffers and the pooler and
	// classifier a head file replaces.
	for _, f := range []*Safetensors{m.st, m.head} {
		if f == nil {
			continue
		}
		u := used[f]
		var extra []string
		for _, t := range f.tensors {
			n := strings.TrimPrefix(t.Name, prefix)
			switch {
			case u[t.Name]:
			case n == "embeddings.position_ids" || n == "embeddings.token_type_ids":
			case f == m.st && m.head != nil && (strings.HasPrefix(n, "pooler.dense.") || strings.HasPrefix(t.Name, "classifier.")):
			default:
				extra = append(extra, t.Name)
			}
		}
		if len(extra) > 0 {
			slices.Sort(extra)
			more := ""
			if len(extra) > 3 {
				more = fmt.Sprintf(" and %d more", len(extra)-3)
				extra = extra[:3]
			}
			return &Error{File: f.Path(), Tensor: extra[0], Rule: ErrUnexpectedTensor,
				Detail: fmt.Sprintf("not part of a %d-layer BERT cross-encoder: %s%s", c.NumLayers, strings.Join(extra, ", "), more)}
		}
	}
	return nil
}

// bertPrefix tells whether the encoder's names carry the `bert.` prefix.
func bertPrefix(f *Safetensors) (string, error) {
	_, pre := f.Info("bert.embeddings.word_embeddings.weight")
	_, bare := f.Info("embeddings.word_embeddings.weight")
	switch {
	case pre && bare:
		return "", &Error{File: f.Path(), Tensor: "embeddings.word_embeddings.weight", Rule: ErrUnexpectedTensor,
			Detail: "both bert.-prefixed and bare encoder names present"}
	case pre:
		return "bert.", nil
	case bare:
		return "", nil
	}
	return "", &Error{File: f.Path(), Tensor: "bert.embeddings.word_embeddings.weight", Rule: ErrMissingTensor,
		Detail: "no BERT word embeddings, with or without the bert. prefix"}
}

func sameShape(a []int64, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != int64(b[k]) {
			return false
		}
	}
	return true
}

// Close releases the safetensors files. It is idempotent.
func (m *Model) Close() error {
	var errs []error
	if m.st != nil {
		errs = append(errs, m.st.Close())
	}
	if m.head != nil {
		errs = append(errs, m.head.Close())
	}
	return errors.Join(errs...)
}
