package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// apiError is a refused request: the status and TEI's error body.
type apiError struct {
	code int
	typ  string
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func (e *apiError) write(w http.ResponseWriter) { writeError(w, e.code, e.typ, e.msg) }

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusUnprocessableEntity, errValidation, fmt.Sprintf(format, args...)}
}

// isJSON reports whether a Content-Type names JSON: application/json or
// application/<anything>+json, with any parameters.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// checkBody refuses a request whose body is not JSON (415) or declares more
// than maxBody bytes (413), before any of it is read.
func checkBody(r *http.Request, maxBody int64) *apiError {
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		if ct == "" {
			ct = "none"
		}
		return &apiError{http.StatusUnsupportedMediaType, errValidation,
			fmt.Sprintf("Content-Type %s: the body must be application/json", ct)}
	}
	if r.ContentLength > maxBody {
		return tooLarge(maxBody)
	}
	return nil
}

func tooLarge(limit int64) *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, errValidation,
		fmt.Sprintf("request body is larger than the limit of %d bytes", limit)}
}

// decodeObject decodes a JSON object body into v: 422 for a body that is
// not one valid UTF-8 JSON value of v's shape.
func decodeObject(body []byte, v any) *apiError {
	if !utf8.Valid(body) {
		return invalid("invalid JSON: the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return invalid("invalid JSON: %s", jsonMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("invalid JSON: data after the top-level value")
	}
	return nil
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

// decodeArray walks the JSON array raw (field names it in errors; raw is
// valid JSON), calling each for every element in order. More than limit
// elements get TEI's batch size error before any is decoded. A missing
// field is "missing field", null or another type 422.
func decodeArray(raw json.RawMessage, field string, limit int, each func(i int, elem json.RawMessage) *apiError) (n int, aerr *apiError) {
	if raw == nil {
		return 0, invalid("missing field `%s`", field)
	}
	if jsonKind(raw) != "array" {
		return 0, invalid("invalid JSON: field %q: expected an array, got JSON %s", field, jsonKind(raw))
	}
	if n := countElements(raw); n > limit {
		return 0, invalid("batch size %d > maximum allowed batch size %d", n, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return 0, invalid("invalid JSON: field %q: %s", field, jsonMessage(err))
	}
	for ; dec.More(); n++ {
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			return 0, invalid("invalid JSON: field %q: %s", field, jsonMessage(err))
		}
		if aerr := each(n, elem); aerr != nil {
			return 0, aerr
		}
	}
	return n, nil
}

// countElements counts the elements of a valid JSON array in one pass over
// its bytes, without decoding them.
func countElements(arr []byte) int {
	depth, n, empty := 0, 0, true
	for i := 0; i < len(arr); i++ {
		switch c := arr[i]; c {
		case '"':
			for i++; i < len(arr) && arr[i] != '"'; i++ {
				if arr[i] == '\\' {
					i++
				}
			}
			empty = false
		case '[', '{':
			depth++
			if depth > 1 {
				empty = false
			}
		case ']', '}':
			depth--
		case ',':
			if depth == 1 {
				n++
			}
		case ' ', '\t', '\r', '\n':
		default:
			if depth == 1 {
				empty = false
			}
		}
	}
	if empty {
		return 0
	}
	return n + 1
}

// jsonKind names the kind of a JSON value from its first byte.
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// decodeString decodes a JSON string element; null and other kinds are 422
// naming it (what: "texts[3]").
func decodeString(raw json.RawMessage, what string) (string, *apiError) {
	if jsonKind(raw) != "string" {
		return "", invalid("%s: expected a string, got JSON %s", what, jsonKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("%s: %s", what, jsonMessage(err))
	}
	return s, nil
}

// TEIRequest is the body of POST /rerank (TEI's RerankRequest).
type TEIRequest struct {
	Query               *string         `json:"query" doc:"the search query (required)"`
	Texts               json.RawMessage `json:"texts" doc:"the texts to rank (required; strings; at most --max-client-batch-size)" schema:"[]string"`
	Truncate            *bool           `json:"truncate" doc:"truncate pairs over the maximum length (longest_first); default --auto-truncate; false: 422 for them"`
	TruncationDirection *string         `json:"truncation_direction" doc:"Right (the default) or Left: which end of the longer text is cut"`
	RawScores           bool            `json:"raw_scores" doc:"return raw logits instead of sigmoid(logit)"`
	ReturnText          bool            `json:"return_text" doc:"return each text with its score"`
}

// teiRequest is a TEI request, decoded and checked.
type teiRequest struct {
	Query      string
	Texts      []string
	Truncate   *bool
	Left       bool // truncation_direction Left
	RawScores  bool
	ReturnText bool
}

// decodeTEI decodes and checks a TEI /rerank body: at most maxTexts texts,
// every text a string.
func decodeTEI(body []byte, maxTexts int) (teiRequest, *apiError) {
	var wire TEIRequest
	if aerr := decodeObject(body, &wire); aerr != nil {
		return teiRequest{}, aerr
	}
	if wire.Query == nil {
		return teiRequest{}, invalid("missing field `query`")
	}
	req := teiRequest{Query: *wire.Query, Truncate: wire.Truncate, RawScores: wire.RawScores, ReturnText: wire.ReturnText}
	n, aerr := decodeArray(wire.Texts, "texts", maxTexts, func(i int, elem json.RawMessage) *apiError {
		s, aerr := decodeString(elem, fmt.Sprintf("texts[%d]", i))
		req.Texts = append(req.Texts, s)
		return aerr
	})
	switch {
	case aerr != nil:
		return teiRequest{}, aerr
	case n == 0:
		return teiRequest{}, &apiError{http.StatusBadRequest, errEmpty, "`texts` cannot be empty"}
	case req.Query == "":
		return teiRequest{}, invalid("`query` cannot be empty")
	}
	if d := wire.TruncationDirection; d != nil {
		switch strings.ToLower(*d) {
		case "right":
		case "left":
			req.Left = true
		default:
			return teiRequest{}, invalid("truncation_direction %q: want Right or Left", *d)
		}
	}
	return req, nil
}

// CohereRequest is the body of POST /v1/rerank (Cohere v1, Jina) and POST
// /v2/rerank (Cohere v2). Unknown fields are ignored, as Cohere does.
type CohereRequest struct {
	Model           string          `json:"model" doc:"any value: the one loaded model answers"`
	Query           *string         `json:"query" doc:"the search query (required)"`
	Documents       json.RawMessage `json:"documents" doc:"the documents to rank (required; strings or objects with a string field text; at most --max-client-batch-size)" schema:"[]string|object"`
	TopN            *int            `json:"top_n" doc:"return only the best top_n results (at least 1; default all)"`
	ReturnDocuments bool            `json:"return_documents" doc:"v1: return each document with its result"`
	RankFields      []string        `json:"rank_fields" doc:"v1: the fields of object documents to rank on, in order (default text)"`
	MaxChunks       *int            `json:"max_chunks_per_doc" doc:"split a document too long for the model's window beside the query into at most this many chunks, score each and keep the best (1..--max-chunks-per-doc; default 1: the pair is truncated)"`
	MaxTokensPerDoc *int            `json:"max_tokens_per_doc" doc:"cut each document to its first max_tokens_per_doc tokens before scoring (at least 1; default: no cut beyond the model's window)"`
}

// cohereRequest is a Cohere (v1, v2) / Jina request, decoded and checked.
type cohereRequest struct {
	Model           string
	Query           string
	Documents       []json.RawMessage // as sent, for return_documents
	Texts           []string          // the text scored for each document
	TopN            int               // 0: all
	ReturnDocuments bool
	MaxTokensPerDoc int // 0: not given
	MaxChunks       int // 0: not given
}

// cohereLimits are the server's bounds on a Cohere request.
type cohereLimits struct {
	maxDocs   int // --max-client-batch-size
	maxChunks int // --max-chunks-per-doc
}

// decodeCohere decodes and checks a Cohere /v1/rerank or /v2/rerank body: at
// most lim.maxDocs documents, each a string or an object with a string
// field "text" (or the rank_fields), and max_chunks_per_doc within
// lim.maxChunks.
func decodeCohere(body []byte, lim cohereLimits) (cohereRequest, *apiError) {
	var wire CohereRequest
	if aerr := decodeObject(body, &wire); aerr != nil {
		return cohereRequest{}, aerr
	}
	if wire.Query == nil {
		return cohereRequest{}, invalid("missing field `query`")
	}
	fields := wire.RankFields
	if len(fields) == 0 {
		fields = []string{"text"}
	}
	req := cohereRequest{Model: wire.Model, Query: *wire.Query, ReturnDocuments: wire.ReturnDocuments}
	if aerr := wire.perDoc(&req, lim.maxChunks); aerr != nil {
		return cohereRequest{}, aerr
	}
	n, aerr := decodeArray(wire.Documents, "documents", lim.maxDocs, func(i int, elem json.RawMessage) *apiError {
		text, aerr := documentText(elem, i, fields)
		if aerr != nil {
			return aerr
		}
		req.Documents = append(req.Documents, append(json.RawMessage(nil), elem...))
		req.Texts = append(req.Texts, text)
		return nil
	})
	switch {
	case aerr != nil:
		return cohereRequest{}, aerr
	case n == 0:
		return cohereRequest{}, &apiError{http.StatusBadRequest, errEmpty, "`documents` cannot be empty"}
	case req.Query == "":
		return cohereRequest{}, invalid("`query` cannot be empty")
	case wire.TopN != nil && *wire.TopN < 1:
		return cohereRequest{}, invalid("`top_n` must be at least 1, got %d", *wire.TopN)
	}
	if wire.TopN != nil {
		req.TopN = *wire.TopN
	}
	return req, nil
}

// perDoc checks max_chunks_per_doc (1..maxChunks) and max_tokens_per_doc
// (at least 1) and sets them in req.
func (wire *CohereRequest) perDoc(req *cohereRequest, maxChunks int) *apiError {
	if m := wire.MaxChunks; m != nil {
		if *m < 1 || *m > maxChunks {
			return invalid("`max_chunks_per_doc` must be in 1..%d (--max-chunks-per-doc), got %d", maxChunks, *m)
		}
		req.MaxChunks = *m
	}
	if m := wire.MaxTokensPerDoc; m != nil {
		if *m < 1 {
			return invalid("`max_tokens_per_doc` must be at least 1, got %d", *m)
		}
		req.MaxTokensPerDoc = *m
	}
	return nil
}

// documentText returns the text of documents[i]: the string, or the values
// of the object's string fields, one "field: value" line each (the value
// alone for the single field "text").
func documentText(elem json.RawMessage, i int, fields []string) (string, *apiError) {
	switch jsonKind(elem) {
	case "string":
		var s string
		if json.Unmarshal(elem, &s) == nil {
			return s, nil
		}
	case "object":
		var obj map[string]json.RawMessage
		if json.Unmarshal(elem, &obj) != nil {
			break
		}
		var b strings.Builder
		for k, f := range fields {
			var v string
			if jsonKind(obj[f]) != "string" || json.Unmarshal(obj[f], &v) != nil {
				return "", invalid("documents[%d]: field %q: want a string, got JSON %s", i, f, jsonKind(obj[f]))
			}
			if len(fields) == 1 && f == "text" {
				return v, nil
			}
			if k > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(f + ": " + v)
		}
		return b.String(), nil
	}
	return "", invalid("documents[%d]: want a string or an object with a string field \"text\", got JSON %s", i, jsonKind(elem))
}
