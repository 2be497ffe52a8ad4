//go:build cgo

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
