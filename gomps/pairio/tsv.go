package pairio

import (
	"bytes"
	"io"
	"strings"
)

// TSVReader reads `query<TAB>passage` lines: exactly two fields, the passage
// may be empty, the query may not. Blank lines are ignored. The first line is
// a header only if it is literally `query<TAB>passage` (HeaderAuto) or when
// Options.Header is HeaderPresent.
type TSVReader struct {
	lr    *lineReader
	sk    skipper
	first bool
}

var _ Reader = (*TSVReader)(nil)

// NewTSVReader reads TSV from r; name is used in positions and errors.
func NewTSVReader(r io.Reader, name string, opt Options) *TSVReader {
	return &TSVReader{lr: newLineReader(r, name, opt.maxLine()), sk: skipper{opt: opt}, first: true}
}

// Skipped implements Reader.
func (t *TSVReader) Skipped() int { return t.sk.skipped }

// Next implements Reader.
func (t *TSVReader) Next() (Item, error) {
	for {
		it, ok, err := t.next()
		if err != nil {
			if err = t.sk.skip(err); err != nil {
				return Item{}, err
			}
			continue
		}
		if ok {
			return it, nil
		}
	}
}

// next reads one line; ok is false for lines that carry no item.
func (t *TSVReader) next() (Item, bool, error) {
	line, err := t.lr.next()
	if err != nil {
		return Item{}, false, err
	}
	if len(bytes.TrimSpace(line)) == 0 { // blank, or only spaces and tabs
		return Item{}, false, nil
	}
	if t.first {
		t.first = false
		switch t.sk.opt.Header {
		case HeaderPresent:
			return Item{}, false, nil
		case HeaderAuto:
			if string(line) == "query\tpassage" {
				return Item{}, false, nil
			}
		}
	}
	n := t.lr.n
	if c := bytes.Count(line, []byte{'\t'}); c != 1 {
		return Item{}, false, lineErr(t.lr.name, n, "%d fields, want 2 (query<TAB>passage)", c+1)
	}
	q, p, _ := strings.Cut(string(line), "\t")
	if strings.TrimSpace(q) == "" {
		return Item{}, false, lineErr(t.lr.name, n, "empty query")
	}
	if err := checkText("query", q); err != nil {
		return Item{}, false, lineErr(t.lr.name, n, "%v", err)
	}
	if err := checkText("passage", p); err != nil {
		return Item{}, false, lineErr(t.lr.name, n, "%v", err)
	}
	return Item{Query: q, Passage: p, Pos: Pos{t.lr.name, n}}, true, nil
}
