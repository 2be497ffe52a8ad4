package pairio

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format names an input or output format.
type Format string

// Formats.
const (
	FormatTSV   Format = "tsv"
	FormatJSONL Format = "jsonl"
	FormatTREC  Format = "trec"
)

// ParseFormat parses a format name (tsv, jsonl or trec; "run" means trec).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tsv":
		return FormatTSV, nil
	case "jsonl", "ndjson":
		return FormatJSONL, nil
	case "trec", "run":
		return FormatTREC, nil
	}
	return "", fmt.Errorf("pairio: unknown format %q (want tsv, jsonl or trec)", s)
}

// FormatOf guesses a file's format from its extension: .tsv, .jsonl, .ndjson,
// .json, and .run or .trec for TREC runs.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".tsv", ".txt":
		return FormatTSV, nil
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL, nil
	case ".run", ".trec":
		return FormatTREC, nil
	}
	return "", fmt.Errorf("pairio: cannot tell the format of %q from its extension; name it (tsv, jsonl or trec)", path)
}

// fileReader closes its file once the reader is done with it.
type fileReader struct {
	Reader
	f io.Closer
}

func (r *fileReader) Close() error { return r.f.Close() }

// ReadCloser is a Reader over an open file.
type ReadCloser interface {
	Reader
	io.Closer
}

// Open opens a TSV or JSONL file ("-" is standard input) as a Reader. TREC
// inputs need three files: use OpenTREC.
func Open(path string, format Format, opt Options) (ReadCloser, error) {
	var f io.ReadCloser
	name := path
	if path == "-" {
		f, name = io.NopCloser(os.Stdin), "<stdin>"
	} else {
		file, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("pairio: %w", err)
		}
		f = file
	}
	switch format {
	case FormatTSV:
		return &fileReader{NewTSVReader(f, name, opt), f}, nil
	case FormatJSONL:
		return &fileReader{NewJSONLReader(f, name, opt), f}, nil
	}
	f.Close()
	return nil, fmt.Errorf("pairio: Open: format %q needs OpenTREC (run, queries and passages files)", format)
}

// GroupReader groups consecutive items of one query: the same QID, or, when
// items have no QID, the same query text.
type GroupReader struct {
	r    Reader
	next *Item
	err  error
}

// Groups wraps r.
func Groups(r Reader) *GroupReader { return &GroupReader{r: r} }

func sameQuery(a, b *Item) bool {
	if a.QID != "" || b.QID != "" {
		return a.QID == b.QID
	}
	return a.Query == b.Query
}

// Next returns the next group, or io.EOF after the last.
func (g *GroupReader) Next() ([]Item, error) {
	if g.next == nil && g.err == nil {
		it, err := g.r.Next()
		if err != nil {
			g.err = err
		} else {
			g.next = &it
		}
	}
	if g.next == nil {
		return nil, g.err
	}
	group := []Item{*g.next}
	g.next = nil
	for {
		it, err := g.r.Next()
		if err != nil {
			g.err = err
			return group, nil
		}
		if !sameQuery(&group[0], &it) {
			g.next = &it
			return group, nil
		}
		group = append(group, it)
	}
}
