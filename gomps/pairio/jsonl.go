package pairio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// JSONLReader reads JSON lines in three shapes: one pair per line, or one
// query per line with its passages or its candidates:
//
//	{"qid": "1", "query": "q", "docid": "d1", "passage": "p1"}
//	{"qid": "1", "query": "q", "passages": ["p1", "p2"]}
//	{"qid": "1", "query": "q", "candidates": [{"docid": "d1", "text": "p1", "rank": 1, "score": 2.5}]}
//
// which covers the shared rerank.*.jsonl files ({set, qid, query,
// candidates: [{docid, rank, bm25_score, text}]}) and rank_llm's requests,
// where the query is an object {"text": "q", "qid": "1"} and a candidate's
// text may sit in "doc": {"text" | "contents" | "segment": "p1"}. qid and
// docid may be strings or integers and are optional; a first-stage score is
// "score" or "bm25_score", a first-stage rank "rank" (on a one-pair line, at
// its top level). A line has exactly one of "passage", "passages" and
// "candidates". Unknown fields are ignored. Blank lines are ignored. All
// items of one line share its position; a line with any malformed part is
// malformed as a whole (SkipBad skips it whole and counts one). Consecutive
// one-pair lines of one query (same qid, or same query text without qids)
// form one query group for Groups.
type JSONLReader struct {
	lr      *lineReader
	sk      skipper
	pending []Item
}

var _ Reader = (*JSONLReader)(nil)

// NewJSONLReader reads JSONL from r; name is used in positions and errors.
func NewJSONLReader(r io.Reader, name string, opt Options) *JSONLReader {
	return &JSONLReader{lr: newLineReader(r, name, opt.maxLine()), sk: skipper{opt: opt}}
}

// Skipped implements Reader.
func (j *JSONLReader) Skipped() int { return j.sk.skipped }

// Next implements Reader.
func (j *JSONLReader) Next() (Item, error) {
	for len(j.pending) == 0 {
		line, err := j.lr.next()
		if err == nil {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			j.pending, err = parseJSONLLine(line, Pos{j.lr.name, j.lr.n})
		}
		if err != nil {
			if err = j.sk.skip(err); err != nil {
				return Item{}, err
			}
		}
	}
	it := j.pending[0]
	j.pending = j.pending[1:]
	return it, nil
}

type jsonlQuery struct {
	QID        json.RawMessage   `json:"qid"`
	Query      json.RawMessage   `json:"query"`
	Passages   []*string         `json:"passages"`
	Candidates []*jsonlCandidate `json:"candidates"`
	// The one-pair shape: the passage and its candidate fields at the top.
	Passage *string `json:"passage"`
	jsonlCandidate
}

type jsonlCandidate struct {
	DocID     json.RawMessage `json:"docid"`
	Text      *string         `json:"text"`
	Doc       *jsonlDoc       `json:"doc"`
	Rank      json.RawMessage `json:"rank"`
	Score     *float64        `json:"score"`
	BM25Score *float64        `json:"bm25_score"`
}

type jsonlDoc struct {
	Text     *string `json:"text"`
	Contents *string `json:"contents"`
	Segment  *string `json:"segment"`
}

type jsonlQueryObj struct {
	Text *string         `json:"text"`
	QID  json.RawMessage `json:"qid"`
}

// jsonID decodes an id that may be a JSON string or integer; ok is false when
// raw is absent or null.
func jsonID(raw json.RawMessage) (id string, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", false, err
		}
	} else {
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			return "", false, fmt.Errorf("is %s, want a string or an integer", raw)
		}
		id = string(raw)
	}
	if id == "" || strings.ContainsAny(id, " \t\r\n") {
		return "", false, fmt.Errorf("%q is empty or contains whitespace", id)
	}
	if err := checkText("id", id); err != nil {
		return "", false, err
	}
	return id, true, nil
}

// parseJSONLLine parses one non-blank line into its items: it decodes the
// line (decodeJSONLLine), reads the query and its id (jsonlQueryOf), then the
// passages of the line's one shape (jsonlItems). Any error is a *LineError
// at pos.
func parseJSONLLine(line []byte, pos Pos) ([]Item, error) {
	items, err := jsonlLineItems(line, pos)
	if err != nil {
		return nil, &LineError{Pos: pos, Msg: err.Error()}
	}
	return items, nil
}

// jsonlLineItems runs parseJSONLLine's steps; its errors are the bare
// messages that parseJSONLLine puts in a *LineError.
func jsonlLineItems(line []byte, pos Pos) ([]Item, error) {
	q, err := decodeJSONLLine(line)
	if err != nil {
		return nil, err
	}
	qid, query, err := jsonlQueryOf(q)
	if err != nil {
		return nil, err
	}
	return jsonlItems(q, Item{QID: qid, Query: query, Pos: pos})
}

// decodeJSONLLine decodes a line holding exactly one JSON object.
func decodeJSONLLine(line []byte) (*jsonlQuery, error) {
	var q jsonlQuery
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	return &q, nil
}

// jsonlQueryOf returns the line's query id ("" when absent) and query text:
// "query" is a string, or an object {"text", "qid"} whose qid must agree
// with a top-level one.
func jsonlQueryOf(q *jsonlQuery) (qid, query string, err error) {
	qid, _, err = jsonID(q.QID)
	if err != nil {
		return "", "", fmt.Errorf("qid %v", err)
	}
	switch raw := bytes.TrimSpace(q.Query); {
	case len(raw) == 0 || string(raw) == "null":
		return "", "", errors.New(`no "query"`)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &query); err != nil {
			return "", "", fmt.Errorf("query: %v", err)
		}
	case raw[0] == '{':
		if qid, query, err = jsonlQueryObject(raw, qid); err != nil {
			return "", "", err
		}
	default:
		return "", "", fmt.Errorf("query is %s, want a string or an object", raw)
	}
	if strings.TrimSpace(query) == "" {
		return "", "", errors.New("empty query")
	}
	if err := checkText("query", query); err != nil {
		return "", "", err
	}
	return qid, query, nil
}

// jsonlQueryObject reads a query object {"text": "q", "qid": "1"}; qid is
// the line's top-level id ("" when absent), which the object's must match.
func jsonlQueryObject(raw json.RawMessage, qid string) (string, string, error) {
	var o jsonlQueryObj
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", "", fmt.Errorf("query: %v", err)
	}
	if o.Text == nil {
		return "", "", errors.New(`query object has no "text"`)
	}
	inner, ok, err := jsonID(o.QID)
	if err != nil {
		return "", "", fmt.Errorf("query.qid %v", err)
	}
	if ok {
		if qid != "" && qid != inner {
			return "", "", fmt.Errorf("qid %q and query.qid %q differ", qid, inner)
		}
		qid = inner
	}
	return qid, *o.Text, nil
}

// jsonlItems returns the items of the line's one shape ("passage",
// "passages" or "candidates"), each a copy of base with its passage.
func jsonlItems(q *jsonlQuery, base Item) ([]Item, error) {
	shapes := 0
	for _, present := range []bool{q.Passage != nil, q.Passages != nil, q.Candidates != nil} {
		if present {
			shapes++
		}
	}
	switch {
	case shapes > 1:
		return nil, errors.New(`more than one of "passage", "passages" and "candidates"`)
	case shapes == 0:
		return nil, errors.New(`no "passage", "passages" or "candidates"`)
	case q.Passage != nil:
		if q.Text != nil || q.Doc != nil {
			return nil, errors.New(`"passage" with a top-level "text" or "doc"`)
		}
		c := q.jsonlCandidate
		c.Text = q.Passage
		it, err := candidateItem(base, &c, "")
		if err != nil {
			return nil, err
		}
		return []Item{it}, nil
	}
	items := make([]Item, 0, len(q.Passages)+len(q.Candidates))
	for i, p := range q.Passages {
		if p == nil {
			return nil, fmt.Errorf("passages[%d] is null", i)
		}
		if err := checkText(fmt.Sprintf("passages[%d]", i), *p); err != nil {
			return nil, err
		}
		it := base
		it.Passage = *p
		items = append(items, it)
	}
	for i, c := range q.Candidates {
		if c == nil {
			return nil, fmt.Errorf("candidates[%d] is null", i)
		}
		it, err := candidateItem(base, c, fmt.Sprintf("candidates[%d]", i))
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// candidateItem fills it from a candidate: docid, text, rank and score.
// where prefixes the candidate's fields in errors ("candidates[3]"; "" for
// a one-pair line, whose fields sit at its top level).
func candidateItem(it Item, c *jsonlCandidate, where string) (Item, error) {
	field := func(name string) string {
		if where == "" {
			return name
		}
		return where + "." + name
	}
	var err error
	if it.DocID, _, err = jsonID(c.DocID); err != nil {
		return it, fmt.Errorf("%s %v", field("docid"), err)
	}
	var text *string
	switch {
	case c.Text != nil:
		text = c.Text
	case c.Doc != nil && c.Doc.Text != nil:
		text = c.Doc.Text
	case c.Doc != nil && c.Doc.Contents != nil:
		text = c.Doc.Contents
	case c.Doc != nil && c.Doc.Segment != nil:
		text = c.Doc.Segment
	default:
		return it, fmt.Errorf(`%s has no "text" (or "doc": {"text"|"contents"|"segment"})`, where)
	}
	what := field("text")
	if where == "" {
		what = "passage"
	}
	if err := checkText(what, *text); err != nil {
		return it, err
	}
	it.Passage = *text
	if r := bytes.TrimSpace(c.Rank); len(r) > 0 && string(r) != "null" {
		n, err := strconv.Atoi(string(r))
		if err != nil {
			return it, fmt.Errorf("%s is %s, want an integer", field("rank"), r)
		}
		it.InputRank = n
	}
	switch {
	case c.Score != nil:
		it.InputScore, it.HasInputScore = *c.Score, true
	case c.BM25Score != nil:
		it.InputScore, it.HasInputScore = *c.BM25Score, true
	}
	if math.IsNaN(it.InputScore) || math.IsInf(it.InputScore, 0) {
		return it, fmt.Errorf("%s is not finite", field("score"))
	}
	return it, nil
}
