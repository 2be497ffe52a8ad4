//go:build cgo

package gomps

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/internal/engine"
)

func tokenizerJSON(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tiny", "tokenizer.json"))
	require.NoError(t, err)
	return b
}

// editJSON returns data with top-level key set to val (raw JSON).
func editJSON(t testing.TB, data []byte, key, val string) []byte {
	t.Helper()
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &doc))
	doc[key] = json.RawMessage(val)
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return out
}

func newTestTokenizer(t testing.TB, data []byte) *tokenizer {
	t.Helper()
	tk, err := newTokenizer(data)
	require.NoError(t, err)
	t.Cleanup(func() { tk.Close() })
	return tk
}

// idsSHA256 is the goldens' digest: ids then types, little-endian int32.
func idsSHA256(ids, types []int32) string {
	h := sha256.New()
	for _, s := range [][]int32{ids, types} {
		for _, v := range s {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(v))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestTokenizerSpecials(t *testing.T) {
	tk := newTestTokenizer(t, tokenizerJSON(t))
	assert.Equal(t, int32(101), tk.cls, "[CLS] id from the pair template")
	assert.Equal(t, int32(102), tk.sep, "[SEP] id from the pair template")
	assert.True(t, tk.dropNUL, "BertNormalizer with clean_text drops NUL")

	bert := editJSON(t, tokenizerJSON(t), "post_processor",
		`{"type":"BertProcessing","sep":["[SEP]",7],"cls":["[CLS]",5]}`)
	tb := newTestTokenizer(t, bert)
	assert.Equal(t, [2]int32{5, 7}, [2]int32{tb.cls, tb.sep}, "BertProcessing ids")
}

func TestTokenizerRejects(t *testing.T) {
	base := tokenizerJSON(t)
	for _, tc := range []struct {
		name, key, val, want string
	}{
		{"post=none", "post_processor", "null", "no post_processor"},
		{"post=roberta", "post_processor", `{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]}`, "not supported"},
		{"post=single-sep", "post_processor", `{"type":"TemplateProcessing","single":[],"pair":[
			{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},
			{"Sequence":{"id":"B","type_id":1}},{"SpecialToken":{"id":"[SEP]","type_id":1}}],
			"special_tokens":{}}`, "is not [CLS] A [SEP] B [SEP]"},
		{"post=types-all-zero", "post_processor", `{"type":"TemplateProcessing","single":[],"pair":[
			{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},
			{"SpecialToken":{"id":"[SEP]","type_id":0}},{"Sequence":{"id":"B","type_id":0}},
			{"SpecialToken":{"id":"[SEP]","type_id":0}}],"special_tokens":{}}`, "types 0 0 0 1 1"},
		{"post=unknown-special", "post_processor", `{"type":"TemplateProcessing","single":[],"pair":[
			{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},
			{"SpecialToken":{"id":"[SEP]","type_id":0}},{"Sequence":{"id":"B","type_id":1}},
			{"SpecialToken":{"id":"[SEP]","type_id":1}}],"special_tokens":{"[CLS]":{"ids":[101]}}}`, `"[SEP]" is not one id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTokenizer(editJSON(t, base, tc.key, tc.val))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "tokenizer: "), "error names the component: %v", err)
		})
	}
	_, err := newTokenizer([]byte("{not json"))
	assert.ErrorContains(t, err, "tokenizer: tokenizer.json")
}

// A tokenizer.json that sets its own truncation and padding must not cut or
// pad the separately tokenized texts.
func TestTokenizerIgnoresOwnTruncationAndPadding(t *testing.T) {
	base := tokenizerJSON(t)
	cut := editJSON(t, base, "truncation", `{"direction":"Right","max_length":4,"strategy":"LongestFirst","stride":0}`)
	cut = editJSON(t, cut, "padding", `{"strategy":{"Fixed":64},"direction":"Right","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"[PAD]"}`)
	plain := newTestTokenizer(t, base)
	edited := newTestTokenizer(t, cut)
	text := "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers."
	want, err := plain.encode(text)
	require.NoError(t, err)
	got, err := edited.encode(text)
	require.NoError(t, err)
	assert.Greater(t, len(want), 4, "the text is longer than the edited truncation")
	assert.Less(t, len(want), 64, "the text is shorter than the edited padding")
	assert.Equal(t, want, got)
}

func TestTokenizerEncode(t *testing.T) {
	tk := newTestTokenizer(t, tokenizerJSON(t))
	vocab := map[string]int32{}
	raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "models", "ms-marco-MiniLM-L-6-v2", "vocab.txt"))
	if err != nil {
		missing(t, os.Getenv("GOMPS_SHARED_OPTIONAL") == "1", "shared vocab.txt not found: %v", err)
	}
	for i, w := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		vocab[w] = int32(i)
	}
	for _, tc := range []struct{ text, words string }{
		{"How many people live in Berlin?", "how many people live in berlin ?"},
		{"", ""},
		{"   \t ", ""},
		{"a\x00b", "ab"},       // NUL removed by clean_text, so C's NUL-terminated strings change nothing
		{"[SEP] x", "[SEP] x"}, // special tokens in text are recognised, as HF does by default
	} {
		t.Run(fmt.Sprintf("text=%q", tc.text), func(t *testing.T) {
			want := []int32{}
			for _, w := range strings.Fields(tc.words) {
				id, ok := vocab[w]
				require.True(t, ok, "word %q in vocab", w)
				want = append(want, id)
			}
			got, err := tk.encode(tc.text)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestTokenizerConcurrent(t *testing.T) {
	tk := newTestTokenizer(t, tokenizerJSON(t))
	texts := []string{"How many people live in Berlin?", "crème brûlée", "東京の人口", "a b c d e f g", ""}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		var err error
		want[i], err = tk.encode(s)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (g + k) % len(texts)
				got, err := tk.encode(texts[i])
				if err != nil {
					errs <- err
					return
				}
				if fmt.Sprint(got) != fmt.Sprint(want[i]) {
					errs <- fmt.Errorf("text %q: got %v want %v", texts[i], got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTokenizerClosed(t *testing.T) {
	tk, err := newTokenizer(tokenizerJSON(t))
	require.NoError(t, err)
	require.NoError(t, tk.Close())
	require.NoError(t, tk.Close(), "Close is idempotent")
	_, err = tk.encode("x")
	assert.ErrorIs(t, err, ErrClosed)
}

// TestGoldenTokenization: every golden case's ids and types, assembled from
// separately tokenized query and passage, hash to the golden digest, and the
// kept token counts match.
func TestGoldenTokenization(t *testing.T) {
	tk := newTestTokenizer(t, tokenizerJSON(t))
	cases := loadGoldens(t, "testmodel", true)
	tiny := loadGoldens(t, "tiny", true)
	require.Equal(t, len(cases), len(tiny))
	truncated := 0
	for i, c := range cases {
		q, err := tk.encode(c.Query)
		require.NoError(t, err)
		p, err := tk.encode(c.Passage)
		require.NoError(t, err)
		ids, types, cut := engine.AssemblePair(q, p, 512, tk.cls, tk.sep)
		if cut {
			truncated++
		}
		kq, kp, _ := engine.PairLengths(len(q), len(p), 512)
		assert.Equal(t, c.IDsSHA256, idsSHA256(ids, types), "%s: ids sha256", c.id(i))
		assert.Equal(t, c.Len, len(ids), "%s: len", c.id(i))
		assert.Equal(t, c.QTokens, kq, "%s: query tokens", c.id(i))
		assert.Equal(t, c.PTokens, kp, "%s: passage tokens", c.id(i))
		assert.Equal(t, c.IDsSHA256, tiny[i].IDsSHA256, "%s: both golden files share the case", c.id(i))
	}
	t.Logf("%d cases, %d truncated", len(cases), truncated)
	if len(cases) > 100 {
		assert.Greater(t, truncated, 10, "the goldens exercise truncation")
	}
}

// mixedText returns a deterministic text of about n bytes mixing what the
// BERT normalizer and pre-tokenizer treat specially: punctuation, accents
// (composed and combining), CJK, tabs and newlines, NUL, emoji, special
// tokens and words longer than WordPiece's 100 characters.
func mixedText(seed uint64, n int) string {
	parts := []string{"Berlin", "population", "café", "cafe\u0301", "北京市", "naïve", "x,y;z", "3.5", "e-mail", "\t", "\n", "\r\n",
		"[SEP]", "a\x00b", "🙂", "ǅ", "İstanbul", strings.Repeat("z", 150), "ﬁne", "Ⅻ", "\u00a0", "don't", "((nested))"}
	var b strings.Builder
	x := seed
	for b.Len() < n {
		x = x*6364136223846793005 + 1442695040888963407
		b.WriteString(parts[(x>>33)%uint64(len(parts))])
		if (x>>20)%4 != 0 {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// encodeFirst returns a prefix of the whole text's ids with at least n of
// them (or all), whatever the text.
func TestEncodeFirstIsPrefix(t *testing.T) {
	tk := newTestTokenizer(t, tokenizerJSON(t))
	require.True(t, tk.wordwise, "the tiny model's tokenizer is BertPreTokenizer + WordPiece")
	for seed := range uint64(12) {
		text := mixedText(seed, 20000+int(seed)*7000)
		full, err := tk.encode(text)
		require.NoError(t, err)
		for _, n := range []int{1, 7, 100, 510, len(full) - 1, len(full), len(full) + 5} {
			got, err := tk.encodeFirst(text, n)
			require.NoError(t, err)
			require.LessOrEqual(t, len(got), len(full), "seed %d n %d", seed, n)
			assert.Equal(t, full[:len(got)], got, "seed %d n %d: a prefix of the whole ids", seed, n)
			assert.GreaterOrEqual(t, len(got), min(n, len(full)), "seed %d n %d: at least n ids", seed, n)
		}
		short, _ := tk.encodeFirst(text, 100)
		assert.Less(t, len(short), len(full), "seed %d: a long text is not tokenized whole", seed)
	}
}

// A long text encoded in pieces cut at spaces gives the ids of the whole.
func TestEncodeInPieces(t *testing.T) {
	tk := newTestTokenizer(t, tokenizerJSON(t))
	for _, text := range []string{mixedText(4, 300000), strings.Repeat("!?[SEP]a.b,c", 20000), strings.Repeat("x", 70000) + " y"} {
		whole := tk.appendIDs(nil, strings.ReplaceAll(text, "\x00", ""))
		for _, piece := range []int{1 << 10, 5001, 64 << 10} {
			old := encodePieceBytes
			encodePieceBytes = piece
			got, err := tk.encode(text)
			encodePieceBytes = old
			require.NoError(t, err)
			assert.Equal(t, whole, got, "pieces of %d bytes of %.20q", piece, text)
		}
	}
}

func FuzzEncodeFirst(f *testing.F) {
	tk := newTestTokenizer(f, tokenizerJSON(f))
	f.Add(mixedText(1, 300), uint16(3))
	f.Add("a b c d e f g h i j k l m n o p", uint16(1))
	f.Add(strings.Repeat("x", 200)+" y", uint16(1))
	f.Fuzz(func(t *testing.T, text string, n uint16) {
		if !utf8.ValidString(text) {
			return // callers check UTF-8 first
		}
		want := int(n%600) + 1
		full, ferr := tk.encode(text)
		got, err := tk.encodeFirst(text, want)
		if (ferr == nil) != (err == nil) {
			t.Fatalf("encode error %v, encodeFirst error %v", ferr, err)
		}
		if err != nil {
			return
		}
		if len(got) > len(full) || !slices.Equal(full[:len(got)], got) || len(got) < min(want, len(full)) {
			t.Fatalf("n %d: encodeFirst gave %d ids %v, not a prefix of the %d ids %v with at least n", want, len(got), got, len(full), full)
		}
	})
}

// BenchmarkEncodeLongText: the cost of a 2 MiB passage whole and when only
// the first 510 tokens can survive truncation.
func BenchmarkEncodeLongText(b *testing.B) {
	tk := newTestTokenizer(b, tokenizerJSON(b))
	text := mixedText(9, 2<<20)
	for _, n := range []int{0, 510} {
		b.Run(fmt.Sprintf("first=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := tk.encodeFirst(text, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
