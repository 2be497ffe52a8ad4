package pairio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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
	return "", fmt.Errorf("unknown format %q (want tsv, jsonl or trec)", s)
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
	return "", fmt.Errorf("cannot tell the format of %q from its extension; name it (tsv, jsonl or trec)", path)
}

// fileReader closes its file once the reader is done with it.
type fileReader struct {
	Reader
	f      io.Closer
	format Format
}

func (r *fileReader) Close() error   { return r.f.Close() }
func (r *fileReader) Format() Format { return r.format }

// ReadCloser is a Reader over an open file.
type ReadCloser interface {
	Reader
	io.Closer
	// Format is the file's format, as given to Open or told by Sniff.
	Format() Format
}

// Open opens a TSV or JSONL file ("-" is standard input) as a Reader. With
// format "" the format is told from the content (see Sniff). TREC inputs
// need three files: use OpenTREC.
func Open(path string, format Format, opt Options) (ReadCloser, error) {
	if format == FormatTREC {
		return nil, fmt.Errorf("format %q needs OpenTREC (run, queries and passages files)", format)
	}
	var f io.ReadCloser
	name := path
	if path == "-" {
		f, name = io.NopCloser(os.Stdin), "<stdin>"
	} else {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		f = file
	}
	var r io.Reader = f
	if format == "" {
		var err error
		if format, r, err = Sniff(f, name, opt.maxLine()); err != nil {
			f.Close()
			return nil, err
		}
	}
	switch format {
	case FormatTSV:
		return &fileReader{NewTSVReader(r, name, opt), f, format}, nil
	case FormatJSONL:
		return &fileReader{NewJSONLReader(r, name, opt), f, format}, nil
	}
	f.Close()
	return nil, fmt.Errorf("unknown format %q", format)
}

// ErrAmbiguousFormat means Sniff could not tell TSV from JSONL.
var ErrAmbiguousFormat = errors.New("cannot tell the input format")

// Sniff tells TSV from JSONL by the first non-blank line of r (read up to
// maxLine bytes; a UTF-8 byte order mark and a CR before the LF ignored):
//
//   - a JSON object without a tab, or a line that starts with "{" and does
//     not hold exactly one tab: JSONL (an invalid line is then the JSONL
//     reader's error, naming its line);
//   - any other line with exactly one tab: TSV;
//   - a JSON object that also splits into two fields at a tab, or a line
//     that is neither: an error matching ErrAmbiguousFormat (the caller
//     then names the format);
//   - no line at all: TSV (no pairs).
//
// It returns the format and a reader that yields r's bytes from the start.
func Sniff(r io.Reader, name string, maxLine int) (Format, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var seen []byte // every byte read so far, handed back through the reader returned
	cur := 0        // where the current line starts in seen
	for {
		frag, err := br.ReadSlice('\n')
		seen = append(seen, frag...)
		if err == bufio.ErrBufferFull && len(seen)-cur <= maxLine+2 {
			continue
		}
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return "", nil, fmt.Errorf("%s: %w", name, err)
		}
		rest := io.MultiReader(bytes.NewReader(seen), br)
		line := seen[cur:]
		if cur == 0 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			if err == io.EOF || len(seen) > maxLine+2 {
				return FormatTSV, rest, nil // no data line: no pairs either way
			}
			cur = len(seen)
			continue
		}
		f, why := sniffLine(line)
		if why != "" {
			return "", nil, fmt.Errorf("%w of %s: %s", ErrAmbiguousFormat, name, why)
		}
		return f, rest, nil
	}
}

// sniffLine tells the format of a first data line, or says why it cannot.
func sniffLine(line []byte) (Format, string) {
	tabs := bytes.Count(line, []byte{'\t'})
	t := bytes.TrimSpace(line)
	obj := t[0] == '{'
	valid := obj && json.Valid(t)
	switch {
	case valid && tabs == 1:
		return "", "its first line is a JSON object and also two tab-separated fields"
	case obj && (valid || tabs != 1):
		return FormatJSONL, ""
	case tabs == 1:
		return FormatTSV, ""
	}
	return "", "its first line is neither a JSON object nor query<TAB>passage"
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
