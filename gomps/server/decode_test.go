package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountElements(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`[]`, 0},
		{` [ ] `, 0},
		{`[""]`, 1},
		{`[null]`, 1},
		{`[0]`, 1},
		{`[[]]`, 1},
		{`[{}]`, 1},
		{`["a,b", "c\"],d", 3]`, 3},
		{`[[1,2,[3,4]], {"a":[5,6],"b":"]"}, "x"]`, 3},
		{`["\\", "\\\""]`, 2},
		{"[\n1 ,\t2\r,3 ]", 3},
	} {
		assert.Equal(t, c.want, countElements([]byte(c.in)), c.in)
	}
}

// decodeCase checks what a decoder returned for body: a refusal is a 400
// or 422 with a message, an acceptance holds what the JSON says within the
// limit.
func checkDecoded(t *testing.T, body []byte, limit int, query string, texts []string, aerr *apiError) {
	t.Helper()
	if aerr != nil {
		if aerr.code != http.StatusBadRequest && aerr.code != http.StatusUnprocessableEntity {
			t.Fatalf("status %d for %q", aerr.code, body)
		}
		if aerr.msg == "" || aerr.typ == "" {
			t.Fatalf("an error without a message or type for %q", body)
		}
		return
	}
	if query == "" || len(texts) == 0 || len(texts) > limit {
		t.Fatalf("accepted query %q with %d texts (limit %d) from %q", query, len(texts), limit, body)
	}
}

func FuzzDecodeTEI(f *testing.F) {
	for _, s := range []string{
		`{"query":"q","texts":["a","b"]}`,
		`{"query":"q","texts":["a",null],"truncate":true}`,
		`{"query":"q","texts":"a","raw_scores":1}`,
		`{"query":"","texts":[]}`,
		`{"texts":["a"],"truncation_direction":"Left","return_text":true}`,
		`{"query":"q","texts":[["a"],{"x":"]"},"\"\\"]}`,
		`{"query":"q","texts":["a"]} x`,
		"{\"query\":\"\xff\",\"texts\":[\"a\"]}",
	} {
		f.Add([]byte(s))
	}
	const limit = 4
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := decodeTEI(body, limit)
		checkDecoded(t, body, limit, req.Query, req.Texts, aerr)
		if aerr != nil {
			return
		}
		var want struct {
			Query string   `json:"query"`
			Texts []string `json:"texts"`
		}
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v: %q", err, body)
		}
		if want.Query != req.Query || strings.Join(want.Texts, "\x00") != strings.Join(req.Texts, "\x00") || len(want.Texts) != len(req.Texts) {
			t.Fatalf("decoded %q %q, encoding/json says %q %q", req.Query, req.Texts, want.Query, want.Texts)
		}
	})
}

func FuzzDecodeCohere(f *testing.F) {
	for _, s := range []string{
		`{"query":"q","documents":["a",{"text":"b","id":1}],"top_n":1,"return_documents":true}`,
		`{"query":"q","documents":[null]}`,
		`{"query":"q","documents":[{"text":null}],"top_n":0}`,
		`{"model":"m","query":"q","documents":[1,true,[]]}`,
		`{"query":"q","documents":["a","b","c","d","e"]}`,
		`{"query":"q","documents":[{"title":"t","body":"b"}],"rank_fields":["title","body"],"max_chunks_per_doc":1}`,
		`{"query":"q","documents":["a"],"max_tokens_per_doc":0,"max_chunks_per_doc":3}`,
	} {
		f.Add([]byte(s))
	}
	const limit = 4
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := decodeCohere(body, cohereLimits{maxDocs: limit, maxChunks: 3})
		checkDecoded(t, body, limit, req.Query, req.Texts, aerr)
		if aerr != nil {
			return
		}
		if len(req.Documents) != len(req.Texts) || req.TopN < 0 || req.MaxChunks < 0 || req.MaxChunks > 3 || req.MaxTokensPerDoc < 0 {
			t.Fatalf("%d documents, %d texts, top_n %d, max_chunks_per_doc %d, max_tokens_per_doc %d",
				len(req.Documents), len(req.Texts), req.TopN, req.MaxChunks, req.MaxTokensPerDoc)
		}
		var wire CohereRequest
		require.NoError(t, json.Unmarshal(body, &wire))
		fields := wire.RankFields
		if len(fields) == 0 {
			fields = []string{"text"}
		}
		for i, d := range req.Documents {
			text, aerr := documentText(d, i, fields)
			if aerr != nil || text != req.Texts[i] || !json.Valid(d) {
				t.Fatalf("document %d %q: text %q vs %q (%v)", i, d, text, req.Texts[i], aerr)
			}
		}
	})
}

// countElements agrees with encoding/json on every valid array.
func FuzzCountElements(f *testing.F) {
	for _, s := range []string{`[]`, `[1,[2,3],{"a":"]"}]`, `["\"", "\\"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var elems []json.RawMessage
		if json.Unmarshal(b, &elems) != nil || elems == nil {
			return
		}
		require.Equal(t, len(elems), countElements(b), "%q", b)
	})
}
