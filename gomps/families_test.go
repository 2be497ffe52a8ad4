//go:build cgo

package gomps

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/daulet/tokenizers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/internal/engine"
	"github.com/gomps/gomps/weights"
)

// The architecture-family test models of testdata/families and their goldens
// (testdata/golden/families), written by tools/golden/families.py. gomps
// cannot score these families yet; these tests check that the committed data
// is what the goldens claim: the files parse, the tensors have the shapes
// their config.json implies, and the tokenizer.json reproduces every golden
// case's token ids.

// familyModel is what a test model must be.
type familyModel struct {
	name   string
	family string // "bert", "xlm-roberta" or "electra"
	arch   string
	dtype  weights.DType
	labels int
	maxLen int // tokens per pair
}

var familyModels = []familyModel{
	{"xlmr", "xlm-roberta", "XLMRobertaForSequenceClassification", weights.F32, 1, 512},
	{"xlmr-long", "xlm-roberta", "XLMRobertaForSequenceClassification", weights.F32, 1, 8192},
	{"electra", "electra", "ElectraForSequenceClassification", weights.F32, 1, 512},
	{"bert-2label", "bert", "BertForSequenceClassification", weights.F16, 2, 512},
	{"minilm-l12", "bert", "BertForSequenceClassification", weights.F16, 1, 512},
	{"tinybert-l2", "bert", "BertForSequenceClassification", weights.BF16, 1, 512},
}

// familyFileLimit is the size limit of each committed model directory.
const familyFileLimit = 4 << 20

// familyConfig is the part of a family config.json the tests check.
type familyConfig struct {
	Architectures []string          `json:"architectures"`
	ModelType     string            `json:"model_type"`
	VocabSize     int               `json:"vocab_size"`
	HiddenSize    int               `json:"hidden_size"`
	EmbeddingSize int               `json:"embedding_size"`
	Layers        int               `json:"num_hidden_layers"`
	Heads         int               `json:"num_attention_heads"`
	Intermediate  int               `json:"intermediate_size"`
	MaxPositions  int               `json:"max_position_embeddings"`
	TypeVocab     int               `json:"type_vocab_size"`
	PadTokenID    int               `json:"pad_token_id"`
	HiddenAct     string            `json:"hidden_act"`
	PositionType  string            `json:"position_embedding_type"`
	ID2Label      map[string]string `json:"id2label"`
	Label2ID      map[string]int    `json:"label2id"`
}

func familyDir(name string) string { return filepath.Join("testdata", "families", name) }

func readFamilyConfig(t *testing.T, m familyModel) familyConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(familyDir(m.name), "config.json"))
	require.NoError(t, err)
	var c familyConfig
	require.NoError(t, json.Unmarshal(raw, &c))
	return c
}

// familyTensors returns the Hugging Face tensor names and shapes a model of
// the family with config c has.
func familyTensors(family string, c familyConfig, labels int) map[string][]int64 {
	H, I, E := int64(c.HiddenSize), int64(c.Intermediate), int64(c.HiddenSize)
	if c.EmbeddingSize != 0 {
		E = int64(c.EmbeddingSize)
	}
	pre := map[string]string{"bert": "bert.", "xlm-roberta": "roberta.", "electra": "electra."}[family]
	out := map[string][]int64{
		pre + "embeddings.word_embeddings.weight":       {int64(c.VocabSize), E},
		pre + "embeddings.position_embeddings.weight":   {int64(c.MaxPositions), E},
		pre + "embeddings.token_type_embeddings.weight": {int64(c.TypeVocab), E},
		pre + "embeddings.LayerNorm.weight":             {E},
		pre + "embeddings.LayerNorm.bias":               {E},
	}
	linear := func(name string, rows, cols int64) {
		out[name+".weight"] = []int64{rows, cols}
		out[name+".bias"] = []int64{rows}
	}
	if E != H {
		linear(pre+"embeddings_project", H, E)
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("%sencoder.layer.%d.", pre, l)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			linear(p+n, H, H)
		}
		linear(p+"intermediate.dense", I, H)
		linear(p+"output.dense", H, I)
		for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
			out[p+n+".weight"] = []int64{H}
			out[p+n+".bias"] = []int64{H}
		}
	}
	if family == "bert" {
		linear("bert.pooler.dense", H, H)
		linear("classifier", int64(labels), H)
	} else {
		linear("classifier.dense", H, H)
		linear("classifier.out_proj", int64(labels), H)
	}
	return out
}

// familyProvenance is testdata/golden/families/provenance.json.
type familyProvenance struct {
	Models map[string]struct {
		Architecture    string `json:"architecture"`
		MaxLength       int    `json:"max_length"`
		DType           string `json:"dtype"`
		ConfigSHA256    string `json:"config_sha256"`
		ModelSHA256     string `json:"model_sha256"`
		TokenizerSHA256 string `json:"tokenizer_sha256"`
		Cases           int    `json:"cases"`
	} `json:"models"`
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFamilyModelFiles: each model's config.json declares its family, shapes
// and labels; model.safetensors holds exactly the tensors that config implies,
// in the stated dtype, all finite; the files are the ones the goldens were
// computed from (sha256 in provenance.json) and within the size limit.
func TestFamilyModelFiles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", "families", "provenance.json"))
	require.NoError(t, err)
	var prov familyProvenance
	require.NoError(t, json.Unmarshal(raw, &prov))
	require.Len(t, prov.Models, len(familyModels))
	for _, m := range familyModels {
		t.Run(m.name, func(t *testing.T) {
			dir := familyDir(m.name)
			c := readFamilyConfig(t, m)
			assert.Equal(t, []string{m.arch}, c.Architectures)
			assert.Equal(t, m.family, c.ModelType)
			assert.Equal(t, "gelu", c.HiddenAct)
			assert.Equal(t, "absolute", c.PositionType)
			require.Len(t, c.ID2Label, m.labels)
			for id, name := range c.ID2Label {
				assert.Equal(t, id, strconv.Itoa(c.Label2ID[name]), "label2id inverts id2label")
			}
			require.Positive(t, c.Heads)
			assert.Zero(t, c.HiddenSize%c.Heads, "hidden_size is a multiple of the heads")
			switch m.family {
			case "xlm-roberta":
				// Position ids start at padding_idx + 1.
				assert.Equal(t, 1, c.PadTokenID)
				assert.Equal(t, m.maxLen, c.MaxPositions-c.PadTokenID-1)
				assert.Equal(t, 1, c.TypeVocab)
			case "electra":
				assert.NotEqual(t, c.HiddenSize, c.EmbeddingSize, "the embedding projection is exercised")
				assert.Equal(t, m.maxLen, c.MaxPositions)
			default:
				assert.Equal(t, m.maxLen, c.MaxPositions)
			}
			if m.labels == 2 {
				assert.Equal(t, map[string]string{"0": "irrelevant", "1": "relevant"}, c.ID2Label)
			}

			st, err := weights.OpenSafetensors(filepath.Join(dir, "model.safetensors"))
			require.NoError(t, err)
			defer st.Close()
			want := familyTensors(m.family, c, m.labels)
			got := map[string][]int64{}
			for _, ti := range st.Tensors() {
				got[ti.Name] = ti.Shape
				assert.Equal(t, m.dtype.String(), ti.DType, ti.Name)
				vals, err := st.Float32(ti.Name)
				require.NoError(t, err, ti.Name)
				for _, v := range vals {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s: non-finite value", ti.Name)
					}
				}
			}
			assert.Equal(t, want, got)

			p, ok := prov.Models[m.name]
			require.True(t, ok, "provenance.json has %s", m.name)
			assert.Equal(t, m.arch, p.Architecture)
			assert.Equal(t, m.maxLen, p.MaxLength)
			assert.Equal(t, m.dtype.String(), p.DType)
			assert.Equal(t, p.ConfigSHA256, sha256File(t, filepath.Join(dir, "config.json")), "config.json is the one the goldens used")
			assert.Equal(t, p.ModelSHA256, sha256File(t, filepath.Join(dir, "model.safetensors")), "model.safetensors is the one the goldens used")
			assert.Equal(t, p.TokenizerSHA256, sha256File(t, filepath.Join(dir, "tokenizer.json")), "tokenizer.json is the one the goldens used")
			var size int64
			for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
				fi, err := os.Stat(filepath.Join(dir, f))
				require.NoError(t, err)
				size += fi.Size()
			}
			assert.LessOrEqual(t, size, int64(familyFileLimit), "committed model size")
		})
	}
}

// pairTemplate is the pair template of a tokenizer.json TemplateProcessing
// post-processor: its pieces in order, each a run of special token ids or one
// of the two sequences ('A' the query, 'B' the passage), with a type id.
type pairTemplate []struct {
	special []int32
	seq     string
	typeID  int32
}

func parsePairTemplate(t *testing.T, tokenizerJSON []byte) pairTemplate {
	t.Helper()
	var doc struct {
		PostProcessor struct {
			Type string `json:"type"`
			Pair []struct {
				SpecialToken *struct {
					ID     string `json:"id"`
					TypeID int32  `json:"type_id"`
				}
				Sequence *struct {
					ID     string `json:"id"`
					TypeID int32  `json:"type_id"`
				}
			} `json:"pair"`
			SpecialTokens map[string]struct {
				IDs []int32 `json:"ids"`
			} `json:"special_tokens"`
		} `json:"post_processor"`
	}
	require.NoError(t, json.Unmarshal(tokenizerJSON, &doc))
	require.Equal(t, "TemplateProcessing", doc.PostProcessor.Type)
	var tpl pairTemplate
	for _, piece := range doc.PostProcessor.Pair {
		switch {
		case piece.SpecialToken != nil:
			st, ok := doc.PostProcessor.SpecialTokens[piece.SpecialToken.ID]
			require.True(t, ok, "special token %q", piece.SpecialToken.ID)
			tpl = append(tpl, struct {
				special []int32
				seq     string
				typeID  int32
			}{special: st.IDs, typeID: piece.SpecialToken.TypeID})
		case piece.Sequence != nil:
			tpl = append(tpl, struct {
				special []int32
				seq     string
				typeID  int32
			}{seq: piece.Sequence.ID, typeID: piece.Sequence.TypeID})
		default:
			t.Fatal("pair template piece is neither a special token nor a sequence")
		}
	}
	return tpl
}

// specials returns how many tokens the template adds to a pair.
func (tpl pairTemplate) specials() int {
	n := 0
	for _, p := range tpl {
		n += len(p.special)
	}
	return n
}

// assemble returns the ids and type ids of the pair (q, p).
func (tpl pairTemplate) assemble(q, p []int32) (ids, types []int32) {
	for _, piece := range tpl {
		part := piece.special
		switch piece.seq {
		case "A":
			part = q
		case "B":
			part = p
		}
		ids = append(ids, part...)
		for range part {
			types = append(types, piece.typeID)
		}
	}
	return ids, types
}

// TestFamilyTokenization: each model's tokenizer.json loads in the Rust
// tokenizers library gomps binds, has the config's vocabulary size, and
// reproduces every golden case: the query and the passage tokenized without
// specials, truncated longest-first to the model's limit and assembled by the
// tokenizer.json pair template give the golden token counts, length and
// ids_sha256. Where the template is BERT's, engine.AssemblePair gives the
// same ids.
func TestFamilyTokenization(t *testing.T) {
	for _, m := range familyModels {
		t.Run(m.name, func(t *testing.T) {
			c := readFamilyConfig(t, m)
			data, err := os.ReadFile(filepath.Join(familyDir(m.name), "tokenizer.json"))
			require.NoError(t, err)
			var doc struct {
				Truncation, Padding json.RawMessage
			}
			require.NoError(t, json.Unmarshal(data, &doc))
			assert.Equal(t, "null", string(doc.Truncation), "the golden truncation is the pair's, not the tokenizer's")
			assert.Equal(t, "null", string(doc.Padding))
			tk, err := tokenizers.FromBytes(data)
			require.NoError(t, err)
			defer tk.Close()
			assert.Equal(t, uint32(c.VocabSize), tk.VocabSize(), "vocab_size = the tokenizer's, added tokens included")
			tpl := parsePairTemplate(t, data)
			want := map[string]int{"xlm-roberta": 4, "bert": 3, "electra": 3}[m.family]
			require.Equal(t, want, tpl.specials(), "special tokens per pair")

			var bert *tokenizer // the engine's own pair assembly, for the BERT template
			if m.family != "xlm-roberta" {
				bert = newTestTokenizer(t, data)
			}
			encode := func(text string) []int32 {
				enc := tk.EncodeWithOptions(text, false)
				ids := make([]int32, len(enc.IDs))
				for i, id := range enc.IDs {
					ids[i] = int32(id)
				}
				return ids
			}
			cases := loadGoldens(t, "families/"+m.name, true)
			var truncated, atLimit, emptyPassage, real, nonASCII int
			for i, gc := range cases {
				q, p := encode(gc.Query), encode(gc.Passage)
				// PairLengths budgets for the 3 specials of [CLS] q [SEP] p [SEP]; a template with more
				// shrinks the budget by the difference.
				kq, kp, cut := engine.PairLengths(len(q), len(p), m.maxLen-(tpl.specials()-3))
				ids, types := tpl.assemble(q[:kq], p[:kp])
				assert.Equal(t, gc.QTokens, kq, "%s: query tokens", gc.id(i))
				assert.Equal(t, gc.PTokens, kp, "%s: passage tokens", gc.id(i))
				assert.Equal(t, gc.Len, len(ids), "%s: len", gc.id(i))
				assert.Equal(t, gc.IDsSHA256, idsSHA256(ids, types), "%s: ids sha256", gc.id(i))
				if bert != nil {
					eids, etypes, _ := engine.AssemblePair(q, p, m.maxLen, bert.cls, bert.sep)
					assert.Equal(t, ids, eids, "%s: engine ids", gc.id(i))
					assert.Equal(t, types, etypes, "%s: engine types", gc.id(i))
				}
				if cut {
					truncated++
				}
				if len(ids) == m.maxLen {
					atLimit++
				}
				if gc.Passage == "" {
					emptyPassage++
				}
				if gc.Transform == "none" {
					real++
				}
				if gc.Transform == "text" && slices.ContainsFunc([]rune(gc.Query+gc.Passage), func(r rune) bool { return r > 127 }) {
					nonASCII++
				}
			}
			t.Logf("%d cases: %d real pairs, %d truncated, %d at the %d-token limit, %d empty passages, %d synthetic non-ASCII",
				len(cases), real, truncated, atLimit, m.maxLen, emptyPassage, nonASCII)
			assert.Positive(t, truncated, "the goldens truncate past the limit")
			assert.GreaterOrEqual(t, atLimit, 2, "exactly at the limit and one over")
			assert.Positive(t, emptyPassage, "an empty passage")
			assert.Positive(t, nonASCII, "non-ASCII text")
		})
	}
}

// TestFamilyGoldenLogits: every golden line carries one finite logit per
// label, at least 50 real pairs per model, and the logits spread (std >= 0.3
// per label over the real pairs) so that a wrong model cannot pass by luck;
// the two labels of a 2-label model are different columns.
func TestFamilyGoldenLogits(t *testing.T) {
	for _, m := range familyModels {
		t.Run(m.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "golden", "families", m.name+".jsonl"))
			require.NoError(t, err)
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			var real [][]float64
			n := 0
			for sc.Scan() {
				var line struct {
					Transform string    `json:"transform"`
					Logits    []float64 `json:"logits"`
				}
				require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "line %d", n+1)
				n++
				require.Len(t, line.Logits, m.labels, "line %d", n)
				for _, v := range line.Logits {
					require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "line %d: non-finite logit", n)
				}
				if line.Transform == "none" {
					real = append(real, line.Logits)
				}
			}
			require.NoError(t, sc.Err())
			require.GreaterOrEqual(t, len(real), 50, "real pairs")
			for j := 0; j < m.labels; j++ {
				var sum, sq float64
				for _, l := range real {
					sum += l[j]
				}
				mean := sum / float64(len(real))
				for _, l := range real {
					sq += (l[j] - mean) * (l[j] - mean)
				}
				std := math.Sqrt(sq / float64(len(real)))
				t.Logf("label %d: mean %.3f std %.3f over %d real pairs (%d lines)", j, mean, std, len(real), n)
				assert.GreaterOrEqual(t, std, 0.3, "label %d: logit spread", j)
			}
			if m.labels == 2 {
				same := 0
				for _, l := range real {
					if math.Abs(l[0]-l[1]) < 1e-3 {
						same++
					}
				}
				assert.Less(t, same, len(real)/10, "the two label columns differ")
			}
		})
	}
}
