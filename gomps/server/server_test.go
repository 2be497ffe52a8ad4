//go:build cgo

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
)

const tinyModel = "../testdata/tiny"

var (
	sharedOnce sync.Once
	sharedR    *gomps.Reranker
	sharedErr  error
)

// tiny returns a reranker over the tiny model shared by the tests of this
// binary (never closed: the process ends).
func tiny(t *testing.T) *gomps.Reranker {
	t.Helper()
	sharedOnce.Do(func() {
		sharedR, sharedErr = gomps.Open(context.Background(), tinyModel, gomps.WithNotices(nil), gomps.WithThreads(2))
	})
	require.NoError(t, sharedErr)
	return sharedR
}

// newTestServer serves a Server over r (nil: still loading) with httptest.
func newTestServer(t *testing.T, r *gomps.Reranker, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(cfg)
	if r != nil {
		require.NoError(t, s.SetReranker(r))
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

// request sends method url with body (of contentType; "" sends none) and
// the header pairs, and returns the response and its body.
func request(t *testing.T, method, url, contentType, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// post sends a JSON body.
func post(t *testing.T, url, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b := request(t, http.MethodPost, url, "application/json", body, header...)
	return resp, []byte(b)
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func sig(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) }

var berlin = struct {
	query string
	texts []string
}{
	"How many people live in Berlin?",
	[]string{
		"Berlin has a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
		"New York City is famous for the Metropolitan Museum of Art.",
		"Berlin is the capital of Germany.",
		"",
		"The population of Berlin grew after reunification.",
	},
}

func TestTEIRerank(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	want, err := r.Score(context.Background(), berlin.query, berlin.texts)
	require.NoError(t, err)

	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw_scores=%v", raw), func(t *testing.T) {
			resp, body := post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{
				"query": berlin.query, "texts": berlin.texts, "raw_scores": raw, "return_text": true}))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var got []struct {
				Index int      `json:"index"`
				Score float64  `json:"score"`
				Text  *string  `json:"text"`
				Other []string `json:"other"`
			}
			require.NoError(t, json.Unmarshal(body, &got))
			require.Len(t, got, len(berlin.texts))
			seen := map[int]bool{}
			for k, g := range got {
				seen[g.Index] = true
				w := float64(want[g.Index])
				if !raw {
					w = sig(want[g.Index])
				}
				assert.InDelta(t, w, g.Score, 1e-6, "score of text %d", g.Index)
				require.NotNil(t, g.Text, "return_text")
				assert.Equal(t, berlin.texts[g.Index], *g.Text, "text of %d", g.Index)
				if k > 0 {
					assert.GreaterOrEqual(t, got[k-1].Score, g.Score, "sorted by score, descending")
				}
			}
			assert.Len(t, seen, len(berlin.texts), "every index once")
			for _, h := range []string{"x-compute-time", "x-tokenization-time", "x-queue-time", "x-inference-time", "x-total-time"} {
				v, err := strconv.ParseFloat(resp.Header.Get(h), 64)
				assert.NoError(t, err, "header %s = %q", h, resp.Header.Get(h))
				assert.GreaterOrEqual(t, v, 0.0, h)
			}
			total, _ := strconv.ParseFloat(resp.Header.Get("x-total-time"), 64)
			inf, _ := strconv.ParseFloat(resp.Header.Get("x-inference-time"), 64)
			assert.Greater(t, inf, 0.0, "inference takes time")
			assert.GreaterOrEqual(t, total, inf, "total covers inference")
			tokens, err := strconv.Atoi(resp.Header.Get("x-compute-tokens"))
			require.NoError(t, err)
			assert.Greater(t, tokens, 3*len(berlin.texts), "tokens include the specials of every pair")
			assert.Equal(t, "cpu", resp.Header.Get("x-compute-type"))
		})
	}

	t.Run("no_text_by_default", func(t *testing.T) {
		resp, body := post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": berlin.query, "texts": berlin.texts}))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotContains(t, string(body), `"text"`)
	})
}

func TestCohereRerank(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	want, err := r.Score(context.Background(), berlin.query, berlin.texts)
	require.NoError(t, err)
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return want[order[a]] > want[order[b]] })

	docs := []any{berlin.texts[0], map[string]any{"text": berlin.texts[1], "id": "doc-1", "year": 2024}}
	for _, s := range berlin.texts[2:] {
		docs = append(docs, s)
	}
	resp, body := post(t, hs.URL+"/v1/rerank", mustJSON(t, map[string]any{
		"model": "rerank-english-v3.0", "query": berlin.query, "documents": docs, "top_n": 3, "return_documents": true}),
		"X-Request-Id", "abc-123")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Results []struct {
			Index          int             `json:"index"`
			RelevanceScore float64         `json:"relevance_score"`
			Document       json.RawMessage `json:"document"`
		} `json:"results"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
		Meta struct {
			BilledUnits struct {
				SearchUnits int `json:"search_units"`
			} `json:"billed_units"`
			Tokens struct {
				InputTokens int `json:"input_tokens"`
			} `json:"tokens"`
		} `json:"meta"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, "abc-123", got.ID, "id is the request id")
	assert.Equal(t, "abc-123", resp.Header.Get("X-Request-Id"), "request id echoed")
	assert.Equal(t, r.Info().Model, got.Model)
	require.Len(t, got.Results, 3, "top_n")
	for k, res := range got.Results {
		assert.Equal(t, order[k], res.Index, "rank %d", k)
		assert.InDelta(t, sig(want[res.Index]), res.RelevanceScore, 1e-6, "relevance_score = sigmoid")
		if res.Index == 1 {
			assert.JSONEq(t, `{"text":`+mustJSON(t, berlin.texts[1])+`,"id":"doc-1","year":2024}`, string(res.Document), "object documents keep their fields")
		} else {
			assert.JSONEq(t, `{"text":`+mustJSON(t, berlin.texts[res.Index])+`}`, string(res.Document))
		}
	}
	assert.Greater(t, got.Usage.TotalTokens, 3*len(docs))
	assert.Equal(t, got.Usage.TotalTokens, got.Usage.PromptTokens)
	assert.Equal(t, got.Usage.TotalTokens, got.Meta.Tokens.InputTokens)
	assert.Equal(t, 1, got.Meta.BilledUnits.SearchUnits)

	t.Run("defaults", func(t *testing.T) {
		resp, body := post(t, hs.URL+"/v1/rerank", mustJSON(t, map[string]any{"query": berlin.query, "documents": berlin.texts}))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.NotContains(t, string(body), `"document"`, "no documents unless return_documents")
		assert.Equal(t, len(berlin.texts), strings.Count(string(body), `"relevance_score"`), "all results without top_n")
		assert.Regexp(t, `^[0-9a-f]{32}$`, resp.Header.Get("X-Request-Id"), "generated request id")
	})
}

// A request of MaxClientBatchSize texts (more than a batch) is scored on an
// idle server whose queue holds exactly that many pairs; one text more is
// refused with TEI's batch size error, before any scoring.
func TestClientBatchLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024 // the least queue the library allows
	r, err := gomps.Open(context.Background(), tinyModel, gomps.WithNotices(nil), gomps.WithThreads(2), gomps.WithMaxQueue(limit))
	require.NoError(t, err)
	defer r.Close()
	_, hs := newTestServer(t, r, Config{AutoTruncate: true, MaxBody: 8 << 20, MaxClientBatchSize: limit})
	texts := make([]string, limit+1)
	for i := range texts {
		texts[i] = fmt.Sprintf("passage %d about Berlin and its %d inhabitants", i, i*37%1000)
	}
	require.Greater(t, limit, r.Info().MaxBatch)
	want, err := r.Score(context.Background(), berlin.query, texts[:limit])
	require.NoError(t, err)
	resp, body := post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": berlin.query, "texts": texts[:limit], "raw_scores": true}))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got []struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got, limit)
	for _, g := range got {
		assert.InDelta(t, float64(want[g.Index]), g.Score, 1e-5, "text %d", g.Index)
	}

	for _, c := range []struct{ path, field string }{{"/rerank", "texts"}, {"/v1/rerank", "documents"}} {
		resp, body = post(t, hs.URL+c.path, mustJSON(t, map[string]any{"query": berlin.query, c.field: texts}))
		assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, c.path)
		assert.JSONEq(t, `{"error":"batch size 1025 > maximum allowed batch size 1024","error_type":"validation"}`, string(body), c.path)
	}
	_, m := get(t, hs.URL+"/metrics")
	assert.Equal(t, float64(2*limit), metricValue(string(m), "gomps_pairs_total"), "the refused requests never reached the engine (want: Score and one request)")

	// A limit the queue cannot admit is refused when the model is set.
	s := New(Config{MaxClientBatchSize: limit + 1})
	assert.ErrorContains(t, s.SetReranker(r), "max client batch size 1025 is more than the 1024 pairs the queue admits")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: true, MaxBody: 4096})
	long := strings.Repeat("berlin population census ", 400) // far over 512 tokens and 4096 bytes
	dense := strings.Repeat("a ", 700)                       // 700 tokens in 1400 bytes
	cases := []struct {
		name, path, body string
		code             int
		errType, msg     string
	}{
		{"invalid_json", "/rerank", `{"query": "q", "texts": [`, 422, "validation", "invalid JSON"},
		{"not_utf8", "/rerank", "{\"query\": \"\xff\", \"texts\": [\"a\"]}", 422, "validation", "UTF-8"},
		{"trailing_data", "/rerank", `{"query":"q","texts":["a"]} {}`, 422, "validation", "after the top-level value"},
		{"empty_body", "/rerank", ``, 422, "validation", "empty body"},
		{"query_type", "/rerank", `{"query": 1, "texts": ["a"]}`, 422, "validation", `field "query"`},
		{"texts_type", "/rerank", `{"query": "q", "texts": "a"}`, 422, "validation", `field "texts"`},
		{"missing_query", "/rerank", `{"texts": ["a"]}`, 422, "validation", "missing field `query`"},
		{"missing_texts", "/rerank", `{"query": "q"}`, 422, "validation", "missing field `texts`"},
		{"empty_query", "/rerank", `{"query": "", "texts": ["a"]}`, 422, "validation", "`query` cannot be empty"},
		{"empty_texts", "/rerank", `{"query": "q", "texts": []}`, 400, "empty", "`texts` cannot be empty"},
		{"bad_truncation_direction", "/rerank", `{"query": "q", "texts": ["a"], "truncation_direction": "Up"}`, 422, "validation", `truncation_direction "Up": want Right or Left`},
		{"max_chunks_per_doc_over", "/v1/rerank", `{"query": "q", "documents": ["a"], "max_chunks_per_doc": 11}`, 422, "validation", "`max_chunks_per_doc` must be in 1..10 (--max-chunks-per-doc), got 11"},
		{"max_chunks_per_doc_zero", "/v1/rerank", `{"query": "q", "documents": ["a"], "max_chunks_per_doc": 0}`, 422, "validation", "`max_chunks_per_doc` must be in 1..10"},
		{"max_tokens_per_doc_zero", "/v2/rerank", `{"query": "q", "documents": ["a"], "max_tokens_per_doc": 0}`, 422, "validation", "`max_tokens_per_doc` must be at least 1, got 0"},
		{"rank_field_missing", "/v1/rerank", `{"query": "q", "documents": [{"text": "a"}], "rank_fields": ["title"]}`, 422, "validation", `documents[0]: field "title"`},
		{"truncate_false_too_long", "/rerank", `{"query": "q", "texts": ["a", "` + dense + `"], "truncate": false}`, 422, "validation", "1 of 2"},
		{"too_large", "/rerank", `{"query": "q", "texts": ["` + long + `"]}`, 413, "validation", "larger than the limit of 4096 bytes"},
		{"documents_type", "/v1/rerank", `{"query": "q", "documents": [1]}`, 422, "validation", "documents[0]"},
		{"document_without_text", "/v1/rerank", `{"query": "q", "documents": [{"title": "x"}]}`, 422, "validation", "documents[0]"},
		{"top_n_zero", "/v1/rerank", `{"query": "q", "documents": ["a"], "top_n": 0}`, 422, "validation", "top_n"},
		{"missing_documents", "/v1/rerank", `{"query": "q"}`, 422, "validation", "missing field `documents`"},
		{"empty_documents", "/v1/rerank", `{"query": "q", "documents": []}`, 400, "empty", "cannot be empty"},
		{"unknown_route", "/v9/rerank", `{}`, 404, "not_found", "no route"},
		{"null_text", "/rerank", `{"query": "q", "texts": ["a", null]}`, 422, "validation", "texts[1]: expected a string, got JSON null"},
		{"number_text", "/rerank", `{"query": "q", "texts": ["a", 7]}`, 422, "validation", "texts[1]: expected a string, got JSON number"},
		{"null_texts", "/rerank", `{"query": "q", "texts": null}`, 422, "validation", `field "texts": expected an array, got JSON null`},
		{"null_document", "/v1/rerank", `{"query": "q", "documents": ["a", null]}`, 422, "validation", "documents[1]: want a string or an object"},
		{"null_document_text", "/v1/rerank", `{"query": "q", "documents": [{"text": null}]}`, 422, "validation", "documents[0]"},
	}
	for _, c := range cases {
		t.Run("case="+c.name, func(t *testing.T) {
			resp, body := post(t, hs.URL+c.path, c.body)
			assert.Equal(t, c.code, resp.StatusCode, string(body))
			var e struct {
				Error     string `json:"error"`
				ErrorType string `json:"error_type"`
			}
			require.NoError(t, json.Unmarshal(body, &e), string(body))
			assert.Equal(t, c.errType, e.ErrorType)
			assert.Contains(t, e.Error, c.msg)
		})
	}
	t.Run("truncate_true_scores_long_text", func(t *testing.T) {
		resp, body := post(t, hs.URL+"/rerank", `{"query": "q", "texts": ["`+dense+`"], "truncate": true}`)
		assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	})
	t.Run("get_rerank", func(t *testing.T) {
		resp, body := get(t, hs.URL+"/rerank")
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "only POST is routed")
		assert.Equal(t, "POST", resp.Header.Get("Allow"))
		assert.JSONEq(t, `{"error":"GET /rerank: method not allowed; use POST","error_type":"validation"}`, string(body))
		resp, _ = post(t, hs.URL+"/health", "")
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "GET", resp.Header.Get("Allow"))
	})
}

func TestAutoTruncateOff(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	_, hs := newTestServer(t, r, Config{AutoTruncate: false})
	long := strings.Repeat("berlin population census ", 200)
	body := mustJSON(t, map[string]any{"query": "q", "texts": []string{"short", long}})
	resp, b := post(t, hs.URL+"/rerank", body)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "no truncate field: the server's default, off")
	assert.Contains(t, string(b), "longer than the maximum of 512 tokens")
	resp, _ = post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": "q", "texts": []string{"short", long}, "truncate": true}))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the request's truncate wins")
	resp, _ = post(t, hs.URL+"/v1/rerank", mustJSON(t, map[string]any{"query": "q", "documents": []string{"short", long}}))
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "Cohere requests follow the server's setting")
	resp, _ = post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": "q", "texts": []string{"short"}}))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "short pairs pass")
}

func TestHealthAndInfoWhileLoading(t *testing.T) {
	t.Parallel()
	s, hs := newTestServer(t, nil, Config{Version: "v9.9.9", Dashboard: true})
	for _, p := range []string{"/health", "/info", "/dashboard"} {
		resp, body := get(t, hs.URL+p)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s while loading: %s", p, body)
	}
	resp, body := post(t, hs.URL+"/rerank", `{"query":"q","texts":["a"]}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.JSONEq(t, `{"error":"the model is loading","error_type":"unhealthy"}`, string(body))
	resp, body = get(t, hs.URL+"/metrics")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "metrics answer while loading")
	assert.Contains(t, string(body), "process_cpu_seconds_total")

	r := tiny(t)
	require.NoError(t, s.SetReranker(r))
	resp, body = get(t, hs.URL+"/health")
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	resp, body = get(t, hs.URL+"/info")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var info InfoResponse
	require.NoError(t, json.Unmarshal(body, &info))
	in := r.Info()
	assert.Equal(t, in.Model, info.ModelID)
	assert.Regexp(t, `^[0-9a-f]{64}$`, info.ModelSHA256)
	assert.Equal(t, in.SHA256, info.ModelSHA256)
	assert.Equal(t, "cpu", info.Backend)
	assert.Equal(t, "f32", info.Precision)
	assert.Equal(t, in.Instances, info.Instances)
	assert.Equal(t, in.Threads, info.Threads)
	assert.Equal(t, "adaptive", info.Batcher)
	assert.Equal(t, 512, info.MaxInputLength)
	assert.Equal(t, "v9.9.9", info.Version)
	assert.Equal(t, DefaultMaxClientBatchSize, info.MaxClientBatch)
	assert.Equal(t, DefaultMaxConcurrentRequests(DefaultMaxBody), info.MaxConcurrent)
	assert.Equal(t, in.MaxQueue, info.MaxQueuePairs)
	assert.Equal(t, in.NativePrecisions, info.NativePrecisions)
	assert.Contains(t, info.NativePrecisions, "f32")
	abs, err := filepath.Abs(tinyModel)
	require.NoError(t, err)
	assert.NotContains(t, string(body), "model_path")
	assert.NotContains(t, string(body), filepath.Dir(abs), "/info does not tell strangers where files lie")
	resp, _ = get(t, hs.URL+"/dashboard")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "dashboard once loaded")

}

// metricValue returns the value of the first exposition line starting with
// prefix (name plus labels), or NaN.
func metricValue(text, prefix string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(prefix):]), 64)
			if err == nil {
				return v
			}
		}
	}
	return math.NaN()
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	// Its own reranker: the counters are checked exactly.
	r, err := gomps.Open(context.Background(), tinyModel, gomps.WithNotices(nil), gomps.WithThreads(2))
	require.NoError(t, err)
	defer r.Close()
	_, hs := newTestServer(t, r, Config{AutoTruncate: true})
	const n = 5
	for i := 0; i < n; i++ {
		resp, _ := post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": berlin.query, "texts": berlin.texts}))
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	resp, _ := post(t, hs.URL+"/rerank", `{"query": 1}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	resp, body := get(t, hs.URL+"/metrics")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	text := string(body)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	assert.Equal(t, float64(n), metricValue(text, "gomps_requests_total"), "engine requests")
	assert.Equal(t, float64(n), metricValue(text, "gomps_request_success_total"))
	assert.Equal(t, float64(n*len(berlin.texts)), metricValue(text, "gomps_pairs_total"))
	assert.Equal(t, float64(n*len(berlin.texts)), metricValue(text, "gomps_batch_size_sum"), "rows forwarded")
	assert.Equal(t, float64(n), metricValue(text, "gomps_request_duration_seconds_count"))
	assert.Equal(t, float64(n), metricValue(text, `gomps_http_requests_total{code="200",handler="/rerank"}`))
	assert.Equal(t, 1.0, metricValue(text, `gomps_http_requests_total{code="422",handler="/rerank"}`))
	assert.Equal(t, float64(n+1), metricValue(text, `gomps_http_request_duration_seconds_count{handler="/rerank"}`))
	assert.False(t, math.IsNaN(metricValue(text, "process_resident_memory_bytes")), "process metrics")
	assert.Positive(t, metricValue(text, "go_gc_heap_live_bytes"), "the live heap of the last GC")
}

func TestOverloaded(t *testing.T) {
	t.Parallel()
	// The real engine with the smallest queue the library allows: one
	// request of 1024 texts fills it, so concurrent ones are refused.
	r, err := gomps.Open(context.Background(), tinyModel, gomps.WithNotices(nil), gomps.WithThreads(2), gomps.WithMaxQueue(1024))
	require.NoError(t, err)
	defer r.Close()
	_, hs := newTestServer(t, r, Config{AutoTruncate: true, MaxBody: 16 << 20, MaxClientBatchSize: 1024, MaxConcurrentRequests: 64})
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = fmt.Sprintf("a fairly ordinary passage number %d about the population of Berlin, Hamburg and Munich", i)
	}
	body := mustJSON(t, map[string]any{"query": berlin.query, "texts": texts})
	codes := map[int]int{}
	var overloadedBody string
	for attempt := 0; attempt < 5 && (codes[429] == 0 || codes[200] == 0); attempt++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(hs.URL+"/rerank", "application/json", strings.NewReader(body))
				if !assert.NoError(t, err) {
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests {
					overloadedBody = string(b)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	t.Logf("status codes: %v", codes)
	require.Positive(t, codes[429], "some requests found the queue full")
	assert.Positive(t, codes[200], "some requests were served")
	assert.Equal(t, codes[200]+codes[429], func() int {
		s := 0
		for _, c := range codes {
			s += c
		}
		return s
	}(), "only 200 and 429")
	assert.JSONEq(t, `{"error":"Model is overloaded","error_type":"overloaded"}`, overloadedBody, "TEI's overloaded body")
	_, m := get(t, hs.URL+"/metrics")
	assert.Equal(t, float64(codes[429]), metricValue(string(m), `gomps_request_failures_total{reason="overloaded"}`))
	assert.Equal(t, float64(codes[429]), metricValue(string(m), `gomps_http_requests_total{code="429",handler="/rerank"}`))
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	r := tiny(t)
	for _, on := range []bool{false, true} {
		var buf syncBuffer
		_, hs := newTestServer(t, r, Config{AutoTruncate: true, LogRequests: on, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": "q", "texts": []string{"a"}}), "X-Request-Id", "req-42")
		post(t, hs.URL+"/rerank", `{"bad json`)
		get(t, hs.URL+"/health")
		out := buf.String()
		if !on {
			assert.Empty(t, out, "no per-request log by default")
			continue
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		assert.Len(t, lines, 3, out)
		assert.Contains(t, lines[0], "request_id=req-42")
		assert.Contains(t, lines[0], "status=200")
		assert.Contains(t, lines[1], "status=422")
		assert.Regexp(t, regexp.MustCompile(`request_id=[0-9a-f]{32} `), lines[1], "generated id in the log")
	}
}

func TestRequestID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc-123", "abc-123"},
		{"has space", ""},
		{strings.Repeat("x", 129), ""},
		{"", ""},
		{"caf\u00e9", ""},
	} {
		got := requestID(c.in)
		if c.want != "" {
			assert.Equal(t, c.want, got)
		} else {
			assert.Regexp(t, `^[0-9a-f]{32}$`, got, "replaced %q", c.in)
		}
	}
	assert.NotEqual(t, requestID(""), requestID(""), "fresh ids")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
