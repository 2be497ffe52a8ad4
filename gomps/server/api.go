package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/internal/jsonhttp"
)

type ctxKey struct{}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id the server gave ctx's request, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Error types, TEI's ErrorType values (plus not_found for unknown routes).
const (
	errUnhealthy  = "unhealthy"
	errBackend    = "backend"
	errOverloaded = "overloaded"
	errValidation = "validation"
	errTokenizer  = "tokenizer"
	errEmpty      = "empty"
	errTimeout    = "timeout"
	// errUnauthorized: no or a wrong API key (401).
	errUnauthorized = "unauthorized"
)

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	jsonhttp.WriteError(w, code, typ, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) { jsonhttp.Write(w, code, v) }

// readBody checks and reads a scoring request's body (checkBody, then at
// most Config.MaxBody bytes). On failure it writes the response: 415, 413,
// 408 for a body that did not arrive within ReadTimeout, 503 when Drain
// cut the request.
func (s *Server) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if aerr := checkBody(r, s.cfg.MaxBody); aerr != nil {
		w.Header().Set("Connection", "close") // the body is not read
		aerr.write(w)
		return nil, false
	}
	body := r.Body
	if r.ContentLength < 0 { // chunked: the limit applies as it arrives
		body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(body)
	if err == nil {
		return buf.Bytes(), true
	}
	w.Header().Set("Connection", "close")
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		tooLarge(tooBig.Limit).write(w)
	case context.Cause(ctx) == errCut:
		writeShuttingDown(w)
	case errors.As(err, &ne) && ne.Timeout():
		writeError(w, http.StatusRequestTimeout, errValidation,
			fmt.Sprintf("the request body did not arrive within the read timeout of %v", s.cfg.ReadTimeout))
	default:
		writeError(w, http.StatusBadRequest, errValidation, "reading the request body: "+err.Error())
	}
	return nil, false
}

// reranker returns the loaded reranker, or writes 503 and returns nil.
func (s *Server) reranker(w http.ResponseWriter) *gomps.Reranker {
	r := s.r.Load()
	if r == nil {
		writeError(w, http.StatusServiceUnavailable, errUnhealthy, "the model is loading")
	}
	return r
}

// scored is a request's outcome.
type scored struct {
	gomps.Result               // Scores are raw logits (the server's reranker has no WithSigmoid)
	chars        int           // characters of every pair
	elapsed      time.Duration // the scoring's wall time
}

// score runs one request through the library's one call (its texts are
// at most Config.MaxClientBatchSize, which fits the engine's queue).
func (s *Server) score(ctx context.Context, rr *gomps.Reranker, req gomps.Request) (scored, error) {
	start := time.Now()
	res, err := rr.Do(ctx, req)
	if err != nil {
		return scored{}, err
	}
	out := scored{Result: res, chars: len(req.Query) * len(req.Passages), elapsed: time.Since(start)}
	for _, t := range req.Passages {
		out.chars += len(t)
	}
	return out, nil
}

// fail writes the response for a scoring error. ctx is the request's
// scoring context; input names the texts in messages ("texts").
func (s *Server) fail(ctx context.Context, w http.ResponseWriter, input string, err error) {
	var tokErr *gomps.TokenizerError
	switch {
	case errors.Is(err, gomps.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, errOverloaded, "Model is overloaded")
	case errors.As(err, &tokErr):
		what := "`query`"
		if tokErr.Index >= 0 {
			what = fmt.Sprintf("%s[%d]", input, tokErr.Index)
		}
		writeError(w, http.StatusUnprocessableEntity, errTokenizer, fmt.Sprintf("%s: the tokenizer refused the text: %v", what, tokErr.Err))
	case errors.Is(err, gomps.ErrEmptyQuery):
		writeError(w, http.StatusUnprocessableEntity, errValidation, "`query` cannot be empty")
	case errors.Is(err, gomps.ErrInvalidUTF8):
		writeError(w, http.StatusUnprocessableEntity, errTokenizer, err.Error())
	case errors.Is(err, gomps.ErrTooLong):
		writeError(w, http.StatusUnprocessableEntity, errValidation, err.Error())
	case errors.Is(err, gomps.ErrClosed) || context.Cause(ctx) == errCut:
		writeShuttingDown(w)
	case context.Cause(ctx) == errRequestTimeout:
		writeError(w, http.StatusGatewayTimeout, errTimeout,
			fmt.Sprintf("the request was not scored within the request timeout of %v; its pairs were dropped", s.cfg.RequestTimeout))
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The client went away; nobody reads this.
		writeError(w, 499, errBackend, "request cancelled")
	default:
		s.log.Error("inference failed", "request_id", RequestID(ctx), "error", err)
		writeError(w, http.StatusFailedDependency, errBackend, "Inference failed: "+err.Error())
	}
}

// setTimingHeaders writes TEI's response headers; times in milliseconds with
// microsecond resolution. For a request split into chunks, the tokenization,
// queue and inference times are means over its pairs of their chunk's span.
func setTimingHeaders(w http.ResponseWriter, backend string, sc scored, total time.Duration) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) }
	h := w.Header()
	h.Set("x-compute-type", backend)
	h.Set("x-compute-time", ms(sc.elapsed))
	h.Set("x-compute-characters", strconv.Itoa(sc.chars))
	h.Set("x-compute-tokens", strconv.Itoa(sc.Tokens))
	h.Set("x-tokenization-time", ms(sc.Timings.Tokenize))
	h.Set("x-queue-time", ms(sc.Timings.Queue))
	h.Set("x-inference-time", ms(sc.Timings.Inference))
	h.Set("x-total-time", ms(total))
}

// TEIRank is one entry of the answer to POST /rerank (TEI's Rank); the
// answer is an array of them, best first.
type TEIRank struct {
	Index int     `json:"index" doc:"the text's position in the request"`
	Score float32 `json:"score" doc:"sigmoid(logit), or the logit with raw_scores"`
	Text  *string `json:"text,omitempty" doc:"with return_text: the text"`
}

func (s *Server) handleTEIRerank(ctx context.Context, w http.ResponseWriter, r *http.Request, rr *gomps.Reranker, body []byte) {
	start := time.Now()
	req, aerr := decodeTEI(body, s.cfg.MaxClientBatchSize)
	if aerr != nil {
		aerr.write(w)
		return
	}
	truncate := s.cfg.AutoTruncate
	if req.Truncate != nil {
		truncate = *req.Truncate
	}
	sc, err := s.score(ctx, rr, gomps.Request{Query: req.Query, Passages: req.Texts, TruncateLeft: req.Left})
	if err != nil {
		s.fail(ctx, w, "texts", err)
		return
	}
	if !truncate && sc.Truncated > 0 {
		writeError(w, http.StatusUnprocessableEntity, errValidation, fmt.Sprintf(
			"%d of %d (query, text) pairs are longer than the maximum of %d tokens; send \"truncate\": true",
			sc.Truncated, len(req.Texts), rr.Info().MaxLength))
		return
	}
	out := make([]TEIRank, len(req.Texts))
	for k, rk := range sc.Ranked(0) {
		score := rk.Score
		if !req.RawScores {
			score = gomps.Sigmoid(score)
		}
		out[k] = TEIRank{Index: rk.Index, Score: score}
		if req.ReturnText {
			out[k].Text = &req.Texts[rk.Index]
		}
	}
	setTimingHeaders(w, rr.Info().Backend, sc, time.Since(start))
	writeJSON(w, http.StatusOK, out)
}

// CohereResult is one result of a Cohere/Jina response.
type CohereResult struct {
	Index          int             `json:"index" doc:"the document's position in the request"`
	RelevanceScore float32         `json:"relevance_score" doc:"sigmoid(logit), in (0, 1)"`
	Document       json.RawMessage `json:"document,omitempty" doc:"v1 with return_documents: the document ({\"text\"} for a string, an object as sent)" schema:"object"`
}

// CohereUsage is Jina's usage block.
type CohereUsage struct {
	PromptTokens int `json:"prompt_tokens" doc:"model tokens of every pair, specials included, after truncation"`
	TotalTokens  int `json:"total_tokens" doc:"as prompt_tokens"`
}

// CohereAPIVersion is Cohere's meta.api_version.
type CohereAPIVersion struct {
	Version string `json:"version" doc:"1 or 2: the API called"`
}

// CohereBilledUnits is Cohere's meta.billed_units.
type CohereBilledUnits struct {
	SearchUnits int `json:"search_units" doc:"always 1"`
}

// CohereTokens is Cohere's meta.tokens.
type CohereTokens struct {
	InputTokens  int `json:"input_tokens" doc:"model tokens of every pair"`
	OutputTokens int `json:"output_tokens" doc:"always 0"`
}

// CohereMeta is Cohere's meta block.
type CohereMeta struct {
	APIVersion  CohereAPIVersion  `json:"api_version"`
	BilledUnits CohereBilledUnits `json:"billed_units"`
	Tokens      CohereTokens      `json:"tokens"`
}

// CohereResponse is the body of a Cohere/Jina answer: v1 and Jina carry
// model and usage, v2 leaves them out.
type CohereResponse struct {
	ID      string         `json:"id" doc:"the request id (X-Request-Id)"`
	Model   string         `json:"model,omitempty" doc:"v1: the loaded model's name"`
	Results []CohereResult `json:"results" doc:"best first"`
	Usage   *CohereUsage   `json:"usage,omitempty" doc:"v1 (Jina's usage)"`
	Meta    CohereMeta     `json:"meta"`
}

func (s *Server) handleCohereRerank(ctx context.Context, w http.ResponseWriter, r *http.Request, rr *gomps.Reranker, body []byte) {
	s.cohereRerank(ctx, w, rr, body, 1)
}

func (s *Server) handleCohereV2Rerank(ctx context.Context, w http.ResponseWriter, r *http.Request, rr *gomps.Reranker, body []byte) {
	s.cohereRerank(ctx, w, rr, body, 2)
}

// cohereRerank answers a Cohere request of API version 1 (also Jina's) or 2.
func (s *Server) cohereRerank(ctx context.Context, w http.ResponseWriter, rr *gomps.Reranker, body []byte, version int) {
	start := time.Now()
	req, aerr := decodeCohere(body, cohereLimits{maxDocs: s.cfg.MaxClientBatchSize, maxChunks: s.cfg.MaxChunksPerDoc})
	if aerr != nil {
		aerr.write(w)
		return
	}
	texts := req.Texts
	sc, err := s.score(ctx, rr, gomps.Request{Query: req.Query, Passages: texts, MaxPassageTokens: req.MaxTokensPerDoc, MaxChunks: req.MaxChunks})
	if err != nil {
		s.fail(ctx, w, "documents", err)
		return
	}
	if !s.cfg.AutoTruncate && sc.Truncated > 0 {
		writeError(w, http.StatusUnprocessableEntity, errValidation, fmt.Sprintf(
			"%d of %d (query, document) pairs are longer than the maximum of %d tokens (the server runs without --auto-truncate)",
			sc.Truncated, len(texts), rr.Info().MaxLength))
		return
	}
	n := len(texts)
	if req.TopN > 0 {
		n = min(n, req.TopN)
	}
	resp := CohereResponse{ID: RequestID(ctx), Results: make([]CohereResult, 0, n)}
	if version == 1 {
		resp.Model = rr.Info().Model
		resp.Usage = &CohereUsage{PromptTokens: sc.Tokens, TotalTokens: sc.Tokens}
	}
	resp.Meta.APIVersion.Version = strconv.Itoa(version)
	resp.Meta.BilledUnits.SearchUnits = 1
	resp.Meta.Tokens.InputTokens = sc.Tokens
	for _, rk := range sc.Ranked(n) {
		i := rk.Index
		res := CohereResult{Index: i, RelevanceScore: gomps.Sigmoid(rk.Score)}
		if req.ReturnDocuments && version == 1 {
			if jsonKind(req.Documents[i]) == "object" {
				res.Document = req.Documents[i] // objects come back with all their fields
			} else {
				res.Document, _ = json.Marshal(struct {
					Text string `json:"text"`
				}{texts[i]})
			}
		}
		resp.Results = append(resp.Results, res)
	}
	setTimingHeaders(w, rr.Info().Backend, sc, time.Since(start))
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	switch { // while draining the middleware answers
	case s.r.Load() == nil:
		writeJSON(w, http.StatusServiceUnavailable, HealthResponse{Status: "loading"})
	default:
		writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
	}
}

// InfoResponse is the body of GET /info. Field names follow TEI's /info
// where it has one. It names the model, never where it lies on disk.
type InfoResponse struct {
	ModelID          string   `json:"model_id" doc:"the model's name"`
	ModelSHA256      string   `json:"model_sha" doc:"sha256 of its model.safetensors"`
	ModelType        string   `json:"model_type" doc:"reranker"`
	TestModel        bool     `json:"test_model" doc:"the test model, not the real reranker"`
	Backend          string   `json:"backend" doc:"cpu or metal"`
	ISA              string   `json:"isa" doc:"the instruction set the backend runs on"`
	Precision        string   `json:"model_dtype" doc:"f32, bf16 or f16"`
	NativePrecisions []string `json:"native_precisions" doc:"the precisions the backend runs natively here"`
	Instances        int      `json:"instances" doc:"forward passes at once"`
	Threads          int      `json:"threads" doc:"native threads over all instances"`
	Batcher          string   `json:"batcher" doc:"adaptive or fixed"`
	MaxBatchRequests int      `json:"max_batch_requests" doc:"pairs per forward pass"`
	MaxInputLength   int      `json:"max_input_length" doc:"tokens per pair, specials included"`
	AutoTruncate     bool     `json:"auto_truncate" doc:"--auto-truncate"`
	MaxBodyBytes     int64    `json:"max_body_bytes" doc:"--max-body"`
	MaxClientBatch   int      `json:"max_client_batch_size" doc:"--max-client-batch-size"`
	MaxConcurrent    int      `json:"max_concurrent_requests" doc:"--max-concurrent-requests"`
	MaxQueuePairs    int      `json:"max_queue_pairs" doc:"--max-queue"`
	Version          string   `json:"version" doc:"the gomps version"`
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	rr := s.reranker(w)
	if rr == nil {
		return
	}
	in := rr.Info()
	writeJSON(w, http.StatusOK, InfoResponse{
		ModelID: in.Model, ModelSHA256: in.SHA256, ModelType: "reranker", TestModel: in.TestModel,
		Backend: in.Backend, ISA: in.ISA, Precision: in.Precision, NativePrecisions: in.NativePrecisions, Instances: in.Instances, Threads: in.Threads,
		Batcher: in.Batcher, MaxBatchRequests: in.MaxBatch, MaxInputLength: in.MaxLength,
		AutoTruncate: s.cfg.AutoTruncate, MaxBodyBytes: s.cfg.MaxBody, MaxClientBatch: s.cfg.MaxClientBatchSize,
		MaxConcurrent: s.cfg.MaxConcurrentRequests, MaxQueuePairs: in.MaxQueue, Version: s.cfg.Version,
	})
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	d := s.dash
	s.mu.Unlock()
	if d == nil {
		writeError(w, http.StatusServiceUnavailable, errUnhealthy, "the model is loading; the dashboard starts once it is loaded")
		return
	}
	d.ServeHTTP(w, r)
}
