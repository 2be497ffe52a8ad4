package pairio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/gomps/gomps/gomps/trec"
)

// Scored is an item with its score.
type Scored struct {
	Item
	Score float64
}

// WriterOptions configure a writer.
type WriterOptions struct {
	// Rerank orders each group by score as trec_eval orders a run (score
	// descending, ties by docid descending, then input order). TREC output is
	// always reranked.
	Rerank bool
	// TopK keeps the k best of each group (0 keeps all); it implies Rerank.
	TopK int
	// Tag is the TREC run tag (default "gomps").
	Tag string
	// Header starts TSV output with a row naming its columns.
	Header bool
}

// Writer writes scored query groups.
type Writer interface {
	// WriteGroup writes one query's scored items. It may reorder g.
	WriteGroup(g []Scored) error
	// Flush writes buffered output to the underlying writer.
	Flush() error
}

// NewWriter returns a writer of the given format.
func NewWriter(w io.Writer, format Format, opt WriterOptions) (Writer, error) {
	switch format {
	case FormatTSV:
		return NewTSVWriter(w, opt), nil
	case FormatJSONL:
		return NewJSONLWriter(w, opt), nil
	case FormatTREC:
		return NewTRECWriter(w, opt), nil
	}
	return nil, fmt.Errorf("unknown output format %q", format)
}

// Rank sorts g in trec_eval's order: score descending, equal scores by docid
// descending, then by input order. NaN scores are an error.
func Rank(g []Scored) error {
	for i := range g {
		if math.IsNaN(g[i].Score) {
			return fmt.Errorf("%s: score is NaN", g[i].Pos)
		}
	}
	sort.SliceStable(g, func(i, j int) bool {
		a, b := &g[i], &g[j]
		if a.Score == b.Score && a.DocID == b.DocID {
			return false
		}
		return trec.Before(a.Score, a.DocID, b.Score, b.DocID)
	})
	return nil
}

// prepare ranks and cuts a group as opt asks.
func prepare(g []Scored, opt WriterOptions, always bool) ([]Scored, error) {
	if always || opt.Rerank || opt.TopK > 0 {
		if err := Rank(g); err != nil {
			return nil, err
		}
		if opt.TopK > 0 && len(g) > opt.TopK {
			g = g[:opt.TopK]
		}
	}
	return g, nil
}

// FormatScore formats a score so that parsing it back preserves the order of
// distinct scores: the shortest decimal that round-trips, as a float32 when
// the value is exactly a float32 (model logits), else as a float64.
func FormatScore(s float64) string {
	if float64(float32(s)) == s {
		return strconv.FormatFloat(s, 'g', -1, 32)
	}
	return strconv.FormatFloat(s, 'g', -1, 64)
}

var tsvClean = strings.NewReplacer("\t", " ", "\n", " ")

// TSVWriter writes one line per pair, tab-separated, in the columns
//
//	[qid] [docid] query passage score
//
// where qid is present when the first pair has a query id and docid when it
// has a passage id: TSV input gives `query passage score`, JSONL with qid
// but bare passages `qid query passage score`, JSONL candidates with docids
// and TREC input all five. The first pair fixes the columns of the file; a
// later pair without an id its columns hold leaves the field empty. With
// WriterOptions.Header the first line names the columns (with no pairs at
// all: `query passage score`). Tabs and line feeds inside texts become
// spaces.
type TSVWriter struct {
	w        *bufio.Writer
	opt      WriterOptions
	qid, doc bool
	fixed    bool
}

// NewTSVWriter returns a TSV writer.
func NewTSVWriter(w io.Writer, opt WriterOptions) *TSVWriter {
	return &TSVWriter{w: bufio.NewWriterSize(w, 64<<10), opt: opt}
}

// fix sets the columns from the first pair and writes the header row.
func (t *TSVWriter) fix(s *Scored) {
	t.fixed = true
	if s != nil {
		t.qid, t.doc = s.QID != "", s.DocID != ""
	}
	if !t.opt.Header {
		return
	}
	if t.qid {
		t.w.WriteString("qid\t")
	}
	if t.doc {
		t.w.WriteString("docid\t")
	}
	t.w.WriteString("query\tpassage\tscore\n")
}

// WriteGroup implements Writer.
func (t *TSVWriter) WriteGroup(g []Scored) error {
	g, err := prepare(g, t.opt, false)
	if err != nil {
		return err
	}
	for i := range g {
		s := &g[i]
		if !t.fixed {
			t.fix(s)
		}
		if t.qid {
			t.w.WriteString(tsvClean.Replace(s.QID))
			t.w.WriteByte('\t')
		}
		if t.doc {
			t.w.WriteString(tsvClean.Replace(s.DocID))
			t.w.WriteByte('\t')
		}
		t.w.WriteString(tsvClean.Replace(s.Query))
		t.w.WriteByte('\t')
		t.w.WriteString(tsvClean.Replace(s.Passage))
		t.w.WriteByte('\t')
		t.w.WriteString(FormatScore(s.Score))
		if err := t.w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

// Flush implements Writer.
func (t *TSVWriter) Flush() error {
	if !t.fixed {
		t.fix(nil)
	}
	if err := t.w.Flush(); err != nil {
		return err
	}
	return nil
}

// JSONLWriter writes one line per query group:
//
//	{"qid": "1", "query": "q", "candidates": [{"docid": "d", "text": "p", "score": 1.5, "rank": 1, "input_rank": 3}]}
//
// qid, docid and input_rank are omitted when absent; rank is the new rank and
// present only when the group was reranked. The output reads back with
// JSONLReader.
type JSONLWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	opt WriterOptions
}

// NewJSONLWriter returns a JSONL writer.
func NewJSONLWriter(w io.Writer, opt WriterOptions) *JSONLWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONLWriter{w: bw, enc: enc, opt: opt}
}

type jsonlOutCandidate struct {
	DocID     string      `json:"docid,omitempty"`
	Text      string      `json:"text"`
	Score     json.Number `json:"score"`
	Rank      int         `json:"rank,omitempty"`
	InputRank int         `json:"input_rank,omitempty"`
}

type jsonlOut struct {
	QID        string              `json:"qid,omitempty"`
	Query      string              `json:"query"`
	Candidates []jsonlOutCandidate `json:"candidates"`
}

// WriteGroup implements Writer.
func (j *JSONLWriter) WriteGroup(g []Scored) error {
	g, err := prepare(g, j.opt, false)
	if err != nil {
		return err
	}
	if len(g) == 0 {
		return nil
	}
	ranked := j.opt.Rerank || j.opt.TopK > 0
	o := jsonlOut{QID: g[0].QID, Query: g[0].Query, Candidates: make([]jsonlOutCandidate, len(g))}
	for i := range g {
		c := jsonlOutCandidate{DocID: g[i].DocID, Text: g[i].Passage, InputRank: g[i].InputRank}
		if math.IsNaN(g[i].Score) || math.IsInf(g[i].Score, 0) {
			return fmt.Errorf("%s: score %v cannot be written as JSON", g[i].Pos, g[i].Score)
		}
		c.Score = json.Number(FormatScore(g[i].Score))
		if ranked {
			c.Rank = i + 1
		}
		o.Candidates[i] = c
	}
	if err := j.enc.Encode(o); err != nil {
		return err
	}
	return nil
}

// Flush implements Writer.
func (j *JSONLWriter) Flush() error {
	if err := j.w.Flush(); err != nil {
		return err
	}
	return nil
}

// TRECWriter writes a reranked run, `qid Q0 docid rank score tag`, each group
// sorted as trec_eval sorts it so the rank column agrees with trec_eval's own
// ordering. Items need a qid and a docid without whitespace.
type TRECWriter struct {
	w   *bufio.Writer
	opt WriterOptions
}

// NewTRECWriter returns a TREC run writer.
func NewTRECWriter(w io.Writer, opt WriterOptions) *TRECWriter {
	if opt.Tag == "" {
		opt.Tag = "gomps"
	}
	return &TRECWriter{w: bufio.NewWriterSize(w, 64<<10), opt: opt}
}

func validRunID(s string) bool { return s != "" && !strings.ContainsAny(s, " \t\r\n\v\f") }

// WriteGroup implements Writer.
func (t *TRECWriter) WriteGroup(g []Scored) error {
	if !validRunID(t.opt.Tag) {
		return fmt.Errorf("run tag %q is empty or contains whitespace", t.opt.Tag)
	}
	for i := range g {
		if !validRunID(g[i].QID) || !validRunID(g[i].DocID) {
			return fmt.Errorf("%s: a TREC run needs a qid and a docid without whitespace (got %q, %q); use a TREC or JSONL input with ids", g[i].Pos, g[i].QID, g[i].DocID)
		}
		if math.IsInf(g[i].Score, 0) {
			return fmt.Errorf("%s: score is infinite", g[i].Pos)
		}
	}
	seen := make(map[[2]string]struct{}, len(g))
	for i := range g {
		k := [2]string{g[i].QID, g[i].DocID}
		if _, dup := seen[k]; dup {
			return fmt.Errorf("%s: docid %s twice for qid %s", g[i].Pos, g[i].DocID, g[i].QID)
		}
		seen[k] = struct{}{}
	}
	g, err := prepare(g, t.opt, true)
	if err != nil {
		return err
	}
	for i := range g {
		if _, err := fmt.Fprintf(t.w, "%s Q0 %s %d %s %s\n", g[i].QID, g[i].DocID, i+1, FormatScore(g[i].Score), t.opt.Tag); err != nil {
			return err
		}
	}
	return nil
}

// Flush implements Writer.
func (t *TRECWriter) Flush() error {
	if err := t.w.Flush(); err != nil {
		return err
	}
	return nil
}
