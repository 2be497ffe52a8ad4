//go:build cgo

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
)

// POST /v2/rerank answers as Cohere's v2: id, results, meta with version 2,
// no model, usage or documents.
func TestCohereV2(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	want, err := r.Score(context.Background(), berlin.query, berlin.texts)
	require.NoError(t, err)
	resp, body := post(t, hs.URL+"/v2/rerank", mustJSON(t, map[string]any{
		"model": "rerank-v3.5", "query": berlin.query, "documents": berlin.texts, "top_n": 2, "max_tokens_per_doc": 4096, "return_documents": true}),
		"X-Request-Id", "v2-req")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &got))
	assert.ElementsMatch(t, []string{"id", "results", "meta"}, keys(got), "v2 fields only")
	assert.JSONEq(t, `"v2-req"`, string(got["id"]))
	var results []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got["results"], &results))
	require.Len(t, results, 2)
	for _, res := range results {
		assert.ElementsMatch(t, []string{"index", "relevance_score"}, keys(res))
		var i int
		var score float64
		require.NoError(t, json.Unmarshal(res["index"], &i))
		require.NoError(t, json.Unmarshal(res["relevance_score"], &score))
		assert.InDelta(t, sig(want[i]), score, 1e-6)
	}
	var meta struct {
		APIVersion struct {
			Version string `json:"version"`
		} `json:"api_version"`
		Tokens struct {
			InputTokens int `json:"input_tokens"`
		} `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal(got["meta"], &meta))
	assert.Equal(t, "2", meta.APIVersion.Version)
	assert.Greater(t, meta.Tokens.InputTokens, 3*len(berlin.texts))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// rank_fields ranks object documents on the named fields, in order; the
// documents come back as sent.
func TestCohereRankFields(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	docs := []map[string]any{
		{"title": "Berlin", "body": "Berlin has 3.5 million inhabitants.", "id": 7},
		{"title": "Museums", "body": "New York is known for its museums.", "id": 8},
	}
	texts := []string{"title: Berlin\nbody: Berlin has 3.5 million inhabitants.", "title: Museums\nbody: New York is known for its museums."}
	want, err := r.Score(context.Background(), berlin.query, texts)
	require.NoError(t, err)
	resp, body := post(t, hs.URL+"/v1/rerank", mustJSON(t, map[string]any{
		"query": berlin.query, "documents": docs, "rank_fields": []string{"title", "body"}, "return_documents": true, "max_chunks_per_doc": 1}))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got CohereResponse
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Results, 2)
	for _, res := range got.Results {
		assert.InDelta(t, sig(want[res.Index]), float64(res.RelevanceScore), 1e-6, "document %d scored on its title and body", res.Index)
		assert.JSONEq(t, mustJSON(t, docs[res.Index]), string(res.Document))
	}
}

// truncation_direction Left keeps the end of a too-long text: the answer is
// the score of the text's last tokens.
func TestTEILeftTruncation(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	const q = "population" // one token: the passage keeps 512 - 3 - 1 tokens
	long := strings.Repeat("berlin ", 700) + "paris"
	kept := strings.Repeat("berlin ", 507) + "paris"
	want, err := r.Score(context.Background(), q, []string{kept, long})
	require.NoError(t, err)
	score := func(dir string) float64 {
		resp, body := post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": q, "texts": []string{long}, "raw_scores": true, "truncation_direction": dir}))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var ranks []TEIRank
		require.NoError(t, json.Unmarshal(body, &ranks))
		return float64(ranks[0].Score)
	}
	assert.InDelta(t, float64(want[0]), score("Left"), 1e-5, "left: the last 508 tokens")
	assert.InDelta(t, float64(want[0]), score("left"), 1e-5)
	assert.InDelta(t, float64(want[1]), score("Right"), 1e-5, "right: the first 508 tokens")
	assert.NotEqual(t, want[0], want[1], "the two ends differ")
}

// oneTokenWords are words of one token each in the tiny model's vocabulary.
var oneTokenWords = []string{"berlin", "has", "the", "of", "in", "is", "a", "and", "paris", "to"}

// words returns n of oneTokenWords from the from-th, cycling, joined by
// spaces.
func words(from, n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = oneTokenWords[(from+i)%len(oneTokenWords)]
	}
	return strings.Join(out, " ")
}

// openTiny opens the tiny model with opts for one test.
func openTiny(t *testing.T, opts ...gomps.Option) *gomps.Reranker {
	t.Helper()
	r, err := gomps.Open(context.Background(), tinyModel, append([]gomps.Option{gomps.WithNotices(nil), gomps.WithThreads(2)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// cohereScores posts body to path and returns the relevance score of each
// document by index, and the input tokens of meta.
func cohereScores(t *testing.T, url string, body any) (map[int]float64, int) {
	t.Helper()
	resp, b := post(t, url, mustJSON(t, body))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var got CohereResponse
	require.NoError(t, json.Unmarshal(b, &got))
	out := map[int]float64{}
	for _, res := range got.Results {
		out[res.Index] = float64(res.RelevanceScore)
	}
	return out, got.Meta.Tokens.InputTokens
}

// max_tokens_per_doc cuts each document to its first tokens: the score is
// that of the cut text.
func TestCohereMaxTokensPerDoc(t *testing.T) {
	t.Parallel()
	r := openTiny(t, gomps.WithMaxLength(64))
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	long, head := words(0, 40), words(0, 5)
	want, err := r.Score(context.Background(), "paris", []string{head, long, "berlin"})
	require.NoError(t, err)
	require.NotEqual(t, want[0], want[1], "the cut changes the score")
	for _, path := range []string{"/v2/rerank", "/v1/rerank"} {
		got, tokens := cohereScores(t, hs.URL+path, map[string]any{"query": "paris", "documents": []string{long, "berlin"}, "max_tokens_per_doc": 5})
		assert.InDelta(t, sig(want[0]), got[0], 1e-6, "%s: the first 5 tokens", path)
		assert.InDelta(t, sig(want[2]), got[1], 1e-6, "%s: a shorter document whole", path)
		assert.Equal(t, (3+1+5)+(3+1+1), tokens, path)
	}
	got, _ := cohereScores(t, hs.URL+"/v2/rerank", map[string]any{"query": "paris", "documents": []string{long}})
	assert.InDelta(t, sig(want[1]), got[0], 1e-6, "without it: the pair truncated to the window")
}

// max_chunks_per_doc scores a long document in chunks of the model's window
// beside the query and keeps the best.
func TestCohereMaxChunksPerDoc(t *testing.T) {
	t.Parallel()
	r := openTiny(t, gomps.WithMaxLength(16)) // a one-token query leaves 12 tokens per chunk
	_, hs := newTestServer(t, r, Config{AutoTruncate: true, MaxChunksPerDoc: 3})
	long := words(0, 30)
	chunks := []string{words(0, 12), words(12, 12), words(24, 6)}
	want, err := r.Score(context.Background(), "paris", append(chunks, "berlin", long))
	require.NoError(t, err)
	got, tokens := cohereScores(t, hs.URL+"/v1/rerank", map[string]any{"query": "paris", "documents": []string{long, "berlin"}, "max_chunks_per_doc": 3})
	assert.InDelta(t, sig(slices.Max(want[:3])), got[0], 1e-6, "the best of three chunks")
	assert.InDelta(t, sig(want[3]), got[1], 1e-6, "a short document is one chunk")
	assert.Equal(t, 3*(3+1)+30+(3+1+1), tokens, "every chunk's pair")

	got, _ = cohereScores(t, hs.URL+"/v1/rerank", map[string]any{"query": "paris", "documents": []string{long}, "max_chunks_per_doc": 2})
	assert.InDelta(t, sig(max(want[0], want[1])), got[0], 1e-6, "the best of the first two chunks")
	got, _ = cohereScores(t, hs.URL+"/v1/rerank", map[string]any{"query": "paris", "documents": []string{long}})
	assert.InDelta(t, sig(want[4]), got[0], 1e-6, "by default one chunk: the pair truncated")

	resp, body := post(t, hs.URL+"/v1/rerank", `{"query": "paris", "documents": ["a"], "max_chunks_per_doc": 4}`)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "1..3 (--max-chunks-per-doc)")
}
