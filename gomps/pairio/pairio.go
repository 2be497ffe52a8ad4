// Package pairio reads and writes (query, passage) work items in the formats
// gomps accepts: TSV, JSONL and TREC (a run plus query and passage files).
//
// Readers stream: they hold one line (JSONL: one query's candidates) at a time,
// except the TREC reader, which keeps the run and only the queries and passages
// that the run names, reading the passages file once, line by line, so a
// collection larger than memory works. Every item carries its source position
// (file:line). A malformed line is a *LineError naming file:line; with
// Options.SkipBad it is skipped and counted instead.
//
// Writers emit TSV, JSONL or a reranked TREC run, one query group at a time,
// ordered as trec_eval orders runs (score descending, then docid descending),
// optionally cut to the top k. CreateAtomic writes to a temporary file in the
// target's directory and renames it into place on Commit, so a reader of the
// target never sees a partial file.
//
// Readers and writers are not safe for concurrent use.
package pairio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Pos is a source position.
type Pos struct {
	File string
	Line int // 1-based
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Item is one (query, passage) pair to score.
type Item struct {
	QID     string // query id; "" when the input has none (TSV, JSONL without qid)
	Query   string
	DocID   string // passage id; "" when the input has none
	Passage string // may be empty

	// First-stage information carried by JSONL and TREC inputs.
	InputRank     int // 0 when absent
	InputScore    float64
	HasInputScore bool

	Pos Pos // where the item was read (a TREC item: its run line)
}

// Reader yields work items one at a time.
type Reader interface {
	// Next returns the next item, or io.EOF after the last one.
	Next() (Item, error)
	// Skipped returns how many malformed lines were skipped (Options.SkipBad).
	Skipped() int
}

// Header says whether the first line of a file is a header row.
type Header int

const (
	// HeaderAuto recognizes a header by its column names: TSV `query<TAB>passage`
	// exactly, a queries file naming qid and query columns, a passages file
	// naming docid and text columns, a run whose first field is qid and whose
	// score field is not a number.
	HeaderAuto Header = iota
	// HeaderPresent treats the first line of every file as a header.
	HeaderPresent
	// HeaderAbsent treats every line as data.
	HeaderAbsent
)

// DefaultMaxLineBytes bounds one input line unless Options.MaxLineBytes is set.
const DefaultMaxLineBytes = 64 << 20

// Options configure a reader.
type Options struct {
	// SkipBad skips malformed lines instead of failing, counting them.
	SkipBad bool
	// OnSkip, when set with SkipBad, is told about each skipped line.
	OnSkip func(*LineError)
	// Header controls header-row detection.
	Header Header
	// MaxLineBytes bounds a line (default DefaultMaxLineBytes); a longer line
	// is malformed.
	MaxLineBytes int
}

func (o Options) maxLine() int {
	if o.MaxLineBytes > 0 {
		return o.MaxLineBytes
	}
	return DefaultMaxLineBytes
}

// ErrMalformed matches every *LineError with errors.Is.
var ErrMalformed = errors.New("malformed input")

// LineError is a malformed line.
type LineError struct {
	Pos Pos
	Msg string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s: %s", e.Pos, e.Msg) }

// Is makes errors.Is(err, ErrMalformed) true.
func (e *LineError) Is(target error) bool { return target == ErrMalformed }

func lineErr(file string, line int, format string, args ...any) *LineError {
	return &LineError{Pos: Pos{file, line}, Msg: fmt.Sprintf(format, args...)}
}

// skipper counts skipped lines and decides whether an error is fatal.
type skipper struct {
	opt     Options
	skipped int
}

// skip returns nil when err is a LineError to be skipped, else err.
func (s *skipper) skip(err error) error {
	var le *LineError
	if !s.opt.SkipBad || !errors.As(err, &le) {
		return err
	}
	s.skipped++
	if s.opt.OnSkip != nil {
		s.opt.OnSkip(le)
	}
	return nil
}

// lineReader yields lines without their LF or CRLF terminator (and the first
// without a UTF-8 byte order mark), with 1-based numbers. A line longer than max is consumed and reported as a *LineError.
type lineReader struct {
	br   *bufio.Reader
	name string
	max  int
	n    int
	buf  []byte
}

func newLineReader(r io.Reader, name string, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), name: name, max: max}
}

// next returns the next line; the slice is valid until the following call.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	tooLong := false
	for {
		frag, err := lr.br.ReadSlice('\n')
		if !tooLong {
			if len(lr.buf)+len(frag) > lr.max+2 { // +2: the terminator
				tooLong = true
				lr.buf = lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, frag...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(frag) == 0 && len(lr.buf) == 0 && !tooLong {
				return nil, io.EOF
			}
		case err != nil:
			return nil, fmt.Errorf("%s: %w", lr.name, err)
		}
		lr.n++
		if tooLong {
			return nil, lineErr(lr.name, lr.n, "line longer than %d bytes", lr.max)
		}
		line := bytes.TrimSuffix(lr.buf, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if lr.n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // a UTF-8 byte order mark
		}
		if len(line) > lr.max {
			return nil, lineErr(lr.name, lr.n, "line longer than %d bytes", lr.max)
		}
		return line, nil
	}
}

// checkText rejects text the tokenizer cannot take: invalid UTF-8 or NUL bytes.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte", what)
	}
	return nil
}
