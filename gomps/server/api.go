package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gomps/gomps/gomps"
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
)

// apiError is TEI's ErrorResponse.
type apiError struct {
	Error     string `json:"error"`
	ErrorType string `json:"error_type"`
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, apiError{Error: msg, ErrorType: typ})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code, buf = http.StatusInternalServerError, *bytes.NewBufferString(`{"error":"encoding the response failed","error_type":"backend"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// decode reads the JSON body into v. It writes the error response (413 over
// the body limit, 422 otherwise) and returns false on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, errValidation,
				fmt.Sprintf("request body is larger than the limit of %d bytes", tooBig.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, errValidation, "reading the request body: "+err.Error())
		return false
	}
	if !utf8.Valid(body) {
		writeError(w, http.StatusUnprocessableEntity, errValidation, "invalid JSON: the body is not valid UTF-8")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusUnprocessableEntity, errValidation, "invalid JSON: "+jsonMessage(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusUnprocessableEntity, errValidation, "invalid JSON: data after the top-level value")
		return false
	}
	return true
}

// jsonMessage names the field of a type error.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	return err.Error()
}

// reranker returns the loaded reranker, or writes 503 and returns nil.
func (s *Server) reranker(w http.ResponseWriter) *gomps.Reranker {
	r := s.r.Load()
	if r == nil {
		writeError(w, http.StatusServiceUnavailable, errUnhealthy, "the model is loading")
	}
	return r
}

// scored is a request's outcome over all its chunks.
type scored struct {
	scores    []float32 // raw logits, input order
	tokens    int
	truncated int
	chars     int
	timings   gomps.Timings // pair-weighted mean over chunks (Total: the longest chunk)
	elapsed   time.Duration // the scoring's wall time
}

// score runs query against texts in chunks of ChunkPairs, chunkWorkers at a
// time; the first failure cancels the rest.
func (s *Server) score(ctx context.Context, rr *gomps.Reranker, query string, texts []string) (scored, error) {
	start := time.Now()
	out := scored{scores: make([]float32, len(texts)), chars: len(query) * len(texts)}
	for _, t := range texts {
		out.chars += len(t)
	}
	type chunk struct{ lo, hi int }
	var chunks []chunk
	for lo := 0; lo < len(texts); lo += ChunkPairs {
		chunks = append(chunks, chunk{lo, min(lo+ChunkPairs, len(texts))})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan chunk, len(chunks))
	for _, c := range chunks {
		next <- c
	}
	close(next)
	var (
		wg                  sync.WaitGroup
		mu                  sync.Mutex
		first               error
		tok, queue, inf, tl float64 // pair-weighted sums, ns x pairs
	)
	for range min(chunkWorkers, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if ctx.Err() != nil {
					return
				}
				res, err := rr.ScoreCall(ctx, query, texts[c.lo:c.hi])
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				copy(out.scores[c.lo:c.hi], res.Scores)
				out.tokens += res.Tokens
				out.truncated += res.Truncated
				n := float64(c.hi - c.lo)
				tok += n * float64(res.Timings.Tokenize)
				queue += n * float64(res.Timings.Queue)
				inf += n * float64(res.Timings.Inference)
				tl += n * float64(res.Timings.Total)
				out.timings.Batches += res.Timings.Batches
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return scored{}, first
	}
	if n := float64(len(texts)); n > 0 {
		out.timings.Tokenize = time.Duration(tok / n)
		out.timings.Queue = time.Duration(queue / n)
		out.timings.Inference = time.Duration(inf / n)
		out.timings.Total = time.Duration(tl / n)
	}
	out.elapsed = time.Since(start)
	return out, nil
}

// fail writes the response for a scoring error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, gomps.ErrOverloaded):
		writeError(w, http.StatusTooManyRequests, errOverloaded, "Model is overloaded")
	case errors.Is(err, gomps.ErrEmptyQuery):
		writeError(w, http.StatusUnprocessableEntity, errValidation, "`query` cannot be empty")
	case errors.Is(err, gomps.ErrInvalidUTF8):
		writeError(w, http.StatusUnprocessableEntity, errTokenizer, err.Error())
	case errors.Is(err, gomps.ErrTooLong):
		writeError(w, http.StatusUnprocessableEntity, errValidation, err.Error())
	case errors.Is(err, gomps.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, errUnhealthy, "the server is shutting down")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The client went away; nobody reads this.
		writeError(w, 499, errBackend, "request cancelled")
	default:
		s.log.Error("inference failed", "request_id", RequestID(r.Context()), "error", err)
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
	h.Set("x-compute-tokens", strconv.Itoa(sc.tokens))
	h.Set("x-tokenization-time", ms(sc.timings.Tokenize))
	h.Set("x-queue-time", ms(sc.timings.Queue))
	h.Set("x-inference-time", ms(sc.timings.Inference))
	h.Set("x-total-time", ms(total))
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// ranking returns the input indices ordered by score, best first (ties by
// index).
func ranking(scores []float32) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	return idx
}

// teiRequest is TEI's RerankRequest.
type teiRequest struct {
	Query               *string  `json:"query"`
	Texts               []string `json:"texts"`
	Truncate            *bool    `json:"truncate"`
	TruncationDirection *string  `json:"truncation_direction"`
	RawScores           bool     `json:"raw_scores"`
	ReturnText          bool     `json:"return_text"`
}

// teiRank is TEI's Rank.
type teiRank struct {
	Index int     `json:"index"`
	Score float32 `json:"score"`
	Text  *string `json:"text,omitempty"`
}

func (s *Server) handleTEIRerank(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rr := s.reranker(w)
	if rr == nil {
		return
	}
	var req teiRequest
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Query == nil:
		writeError(w, http.StatusUnprocessableEntity, errValidation, "missing field `query`")
		return
	case req.Texts == nil:
		writeError(w, http.StatusUnprocessableEntity, errValidation, "missing field `texts`")
		return
	case len(req.Texts) == 0:
		writeError(w, http.StatusBadRequest, errEmpty, "`texts` cannot be empty")
		return
	}
	if d := req.TruncationDirection; d != nil && !strings.EqualFold(*d, "right") {
		writeError(w, http.StatusUnprocessableEntity, errValidation,
			fmt.Sprintf("truncation_direction %q: only right truncation (longest_first) is supported", *d))
		return
	}
	truncate := s.cfg.AutoTruncate
	if req.Truncate != nil {
		truncate = *req.Truncate
	}
	sc, err := s.score(r.Context(), rr, *req.Query, req.Texts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !truncate && sc.truncated > 0 {
		writeError(w, http.StatusUnprocessableEntity, errValidation, fmt.Sprintf(
			"%d of %d (query, text) pairs are longer than the maximum of %d tokens; send \"truncate\": true",
			sc.truncated, len(req.Texts), rr.Info().MaxLength))
		return
	}
	out := make([]teiRank, len(req.Texts))
	for k, i := range ranking(sc.scores) {
		score := sc.scores[i]
		if !req.RawScores {
			score = sigmoid(score)
		}
		out[k] = teiRank{Index: i, Score: score}
		if req.ReturnText {
			out[k].Text = &req.Texts[i]
		}
	}
	setTimingHeaders(w, rr.Info().Backend, sc, time.Since(start))
	writeJSON(w, http.StatusOK, out)
}

// cohereRequest is the Cohere (v1) / Jina rerank request.
type cohereRequest struct {
	Model           string            `json:"model"`
	Query           *string           `json:"query"`
	Documents       []json.RawMessage `json:"documents"`
	TopN            *int              `json:"top_n"`
	ReturnDocuments bool              `json:"return_documents"`
}

type cohereResult struct {
	Index          int             `json:"index"`
	RelevanceScore float32         `json:"relevance_score"`
	Document       json.RawMessage `json:"document,omitempty"`
}

type cohereUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type cohereMeta struct {
	APIVersion struct {
		Version string `json:"version"`
	} `json:"api_version"`
	BilledUnits struct {
		SearchUnits int `json:"search_units"`
	} `json:"billed_units"`
	Tokens struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"tokens"`
}

type cohereResponse struct {
	ID      string         `json:"id"`
	Model   string         `json:"model"`
	Results []cohereResult `json:"results"`
	Usage   cohereUsage    `json:"usage"`
	Meta    cohereMeta     `json:"meta"`
}

func (s *Server) handleCohereRerank(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rr := s.reranker(w)
	if rr == nil {
		return
	}
	var req cohereRequest
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Query == nil:
		writeError(w, http.StatusUnprocessableEntity, errValidation, "missing field `query`")
		return
	case req.Documents == nil:
		writeError(w, http.StatusUnprocessableEntity, errValidation, "missing field `documents`")
		return
	case len(req.Documents) == 0:
		writeError(w, http.StatusBadRequest, errEmpty, "`documents` cannot be empty")
		return
	case req.TopN != nil && *req.TopN < 1:
		writeError(w, http.StatusUnprocessableEntity, errValidation, fmt.Sprintf("`top_n` must be at least 1, got %d", *req.TopN))
		return
	}
	texts := make([]string, len(req.Documents))
	for i, raw := range req.Documents {
		var sv string
		if err := json.Unmarshal(raw, &sv); err == nil {
			texts[i] = sv
			continue
		}
		var obj struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.Text == nil {
			writeError(w, http.StatusUnprocessableEntity, errValidation,
				fmt.Sprintf("documents[%d]: want a string or an object with a string field \"text\"", i))
			return
		}
		texts[i] = *obj.Text
	}
	sc, err := s.score(r.Context(), rr, *req.Query, texts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.cfg.AutoTruncate && sc.truncated > 0 {
		writeError(w, http.StatusUnprocessableEntity, errValidation, fmt.Sprintf(
			"%d of %d (query, document) pairs are longer than the maximum of %d tokens (the server runs without --auto-truncate)",
			sc.truncated, len(texts), rr.Info().MaxLength))
		return
	}
	n := len(texts)
	if req.TopN != nil {
		n = min(n, *req.TopN)
	}
	resp := cohereResponse{ID: RequestID(r.Context()), Model: rr.Info().Model, Results: make([]cohereResult, 0, n),
		Usage: cohereUsage{PromptTokens: sc.tokens, TotalTokens: sc.tokens}}
	resp.Meta.APIVersion.Version = "1"
	resp.Meta.BilledUnits.SearchUnits = 1
	resp.Meta.Tokens.InputTokens = sc.tokens
	for _, i := range ranking(sc.scores)[:n] {
		res := cohereResult{Index: i, RelevanceScore: sigmoid(sc.scores[i])}
		if req.ReturnDocuments {
			if len(req.Documents[i]) > 0 && req.Documents[i][0] == '{' {
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
	switch {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	case s.r.Load() == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// InfoResponse is the body of GET /info. Field names follow TEI's /info
// where it has one.
type InfoResponse struct {
	ModelID          string `json:"model_id"`
	ModelSHA256      string `json:"model_sha"`
	ModelPath        string `json:"model_path"`
	ModelType        string `json:"model_type"`
	TestModel        bool   `json:"test_model"`
	Backend          string `json:"backend"`
	ISA              string `json:"isa"`
	Precision        string `json:"model_dtype"`
	Instances        int    `json:"instances"`
	Threads          int    `json:"threads"`
	Batcher          string `json:"batcher"`
	MaxBatchRequests int    `json:"max_batch_requests"`
	MaxInputLength   int    `json:"max_input_length"`
	AutoTruncate     bool   `json:"auto_truncate"`
	MaxBodyBytes     int64  `json:"max_body_bytes"`
	Version          string `json:"version"`
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	rr := s.reranker(w)
	if rr == nil {
		return
	}
	in := rr.Info()
	writeJSON(w, http.StatusOK, InfoResponse{
		ModelID: in.Model, ModelSHA256: in.SHA256, ModelPath: in.Path, ModelType: "reranker", TestModel: in.TestModel,
		Backend: in.Backend, ISA: in.ISA, Precision: in.Precision, Instances: in.Instances, Threads: in.Threads,
		Batcher: in.Batcher, MaxBatchRequests: in.MaxBatch, MaxInputLength: in.MaxLength,
		AutoTruncate: s.cfg.AutoTruncate, MaxBodyBytes: s.cfg.MaxBody, Version: s.cfg.Version,
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
