package pairio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// JSONLReader reads one query per line, in either shape:
//
//	{"qid": "1", "query": "q", "passages": ["p1", "p2"]}
//	{"qid": "1", "query": "q", "candidates": [{"docid": "d1", "text": "p1", "rank": 1, "score": 2.5}]}
//
// which covers the shared rerank.*.jsonl files ({set, qid, query,
// candidates: [{docid, rank, bm25_score, text}]}) and rank_llm's requests,
// where the query is an object {"text": "q", "qid": "1"} and a candidate's
// text may sit in "doc": {"text" | "contents" | "segment": "p1"}. qid and
// docid may be strings or integers; qid is optional, docid optional; a
// candidate's first-stage score is "score" or "bm25_score". Unknown fields are
// ignored. Blank lines are ignored. All items of one line share its position;
// a line with any malformed part is malformed as a whole (SkipBad skips it
// whole and counts one).
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

func parseJSONLLine(line []byte, pos Pos) ([]Item, error) {
	bad := func(format string, args ...any) ([]Item, error) {
		return nil, &LineError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	var q jsonlQuery
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&q); err != nil {
		return bad("invalid JSON: %v", err)
	}
	if dec.More() {
		return bad("more than one JSON value on the line")
	}
	qid, _, err := jsonID(q.QID)
	if err != nil {
		return bad("qid %v", err)
	}
	var query string
	switch raw := bytes.TrimSpace(q.Query); {
	case len(raw) == 0 || string(raw) == "null":
		return bad(`no "query"`)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &query); err != nil {
			return bad("query: %v", err)
		}
	case raw[0] == '{':
		var o jsonlQueryObj
		if err := json.Unmarshal(raw, &o); err != nil {
			return bad("query: %v", err)
		}
		if o.Text == nil {
			return bad(`query object has no "text"`)
		}
		query = *o.Text
		inner, ok, err := jsonID(o.QID)
		if err != nil {
			return bad("query.qid %v", err)
		}
		if ok {
			if qid != "" && qid != inner {
				return bad("qid %q and query.qid %q differ", qid, inner)
			}
			qid = inner
		}
	default:
		return bad("query is %s, want a string or an object", raw)
	}
	if strings.TrimSpace(query) == "" {
		return bad("empty query")
	}
	if err := checkText("query", query); err != nil {
		return bad("%v", err)
	}
	if q.Passages != nil && q.Candidates != nil {
		return bad(`both "passages" and "candidates"`)
	}
	if q.Passages == nil && q.Candidates == nil {
		return bad(`no "passages" or "candidates"`)
	}
	items := make([]Item, 0, len(q.Passages)+len(q.Candidates))
	for i, p := range q.Passages {
		if p == nil {
			return bad("passages[%d] is null", i)
		}
		if err := checkText(fmt.Sprintf("passages[%d]", i), *p); err != nil {
			return bad("%v", err)
		}
		items = append(items, Item{QID: qid, Query: query, Passage: *p, Pos: pos})
	}
	for i, c := range q.Candidates {
		if c == nil {
			return bad("candidates[%d] is null", i)
		}
		it := Item{QID: qid, Query: query, Pos: pos}
		if it.DocID, _, err = jsonID(c.DocID); err != nil {
			return bad("candidates[%d].docid %v", i, err)
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
			return bad(`candidates[%d] has no "text" (or "doc": {"text"|"contents"|"segment"})`, i)
		}
		if err := checkText(fmt.Sprintf("candidates[%d].text", i), *text); err != nil {
			return bad("%v", err)
		}
		it.Passage = *text
		if r := bytes.TrimSpace(c.Rank); len(r) > 0 && string(r) != "null" {
			n, err := strconv.Atoi(string(r))
			if err != nil {
				return bad("candidates[%d].rank is %s, want an integer", i, r)
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
			return bad("candidates[%d] score is not finite", i)
		}
		items = append(items, it)
	}
	return items, nil
}
