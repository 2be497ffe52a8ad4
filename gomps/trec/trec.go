// Package trec reads TREC qrels and runs and computes retrieval metrics with
// trec_eval's definitions (nDCG at a cutoff, reciprocal rank, recall at a
// cutoff, precision at a cutoff, average precision with or without a cutoff).
//
// Conventions follow trec_eval 9.x exactly:
//   - a run is re-sorted per query by score descending, ties broken by docid
//     descending (byte order); the rank column is ignored;
//   - documents absent from the qrels are non-relevant;
//   - only queries present in both the qrels and the run are averaged, unless
//     Options.Complete (trec_eval -c) counts qrels queries missing from the run
//     as zero;
//   - a query in the qrels without any relevant document is evaluated (and
//     scores 0 on every metric here);
//   - duplicate documents for one query, in the run or in the qrels, are an error.
package trec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLine bounds one line of a qrels or run file, so a corrupt file cannot
// make a reader allocate without limit.
const maxLine = 1 << 20

// Qrels holds relevance judgements: qid -> docid -> relevance grade.
type Qrels map[string]map[string]int

// Entry is one line of a TREC run: qid Q0 docid rank score tag.
type Entry struct {
	QID   string
	DocID string
	Rank  int
	Score float64
	Tag   string
	Line  int // 1-based line number in the source file, 0 if not from a file
}

// Run holds a run's entries per query, in file order until Sort is called.
type Run map[string][]Entry

// lineReader yields lines with their 1-based numbers, refusing lines longer
// than maxLine.
type lineReader struct {
	br   *bufio.Reader
	name string
	n    int
}

func newLineReader(r io.Reader, name string) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), name: name}
}

// next returns the next line without its terminator (LF or CRLF).
func (lr *lineReader) next() (string, error) {
	var buf []byte
	for {
		frag, err := lr.br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLine {
			lr.n++
			return "", fmt.Errorf("%s:%d: line longer than %d bytes", lr.name, lr.n, maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) == 0 {
			return "", io.EOF
		}
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("%s: %w", lr.name, err)
		}
		lr.n++
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		return string(buf), nil
	}
}

// ReadQrels parses qrels in TREC format: "qid iter docid rel" separated by
// whitespace, where iter (usually 0 or Q0) is ignored. Blank lines and lines
// starting with '#' are skipped. name is used in error messages.
func ReadQrels(r io.Reader, name string) (Qrels, error) {
	lr := newLineReader(r, name)
	q := Qrels{}
	for {
		line, err := lr.next()
		if err == io.EOF {
			return q, nil
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%s:%d: invalid UTF-8", name, lr.n)
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: qrels line has %d fields, want 4 (qid iter docid rel)", name, lr.n, len(f))
		}
		rel, err := strconv.Atoi(f[3])
		if err != nil || rel < -127 || rel > 127 {
			return nil, fmt.Errorf("%s:%d: relevance %q is not an integer in [-127, 127]", name, lr.n, f[3])
		}
		docs := q[f[0]]
		if docs == nil {
			docs = map[string]int{}
			q[f[0]] = docs
		}
		if _, dup := docs[f[2]]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate judgement for qid %s docid %s", name, lr.n, f[0], f[2])
		}
		docs[f[2]] = rel
	}
}

// ReadQrelsFile reads a qrels file; see ReadQrels.
func ReadQrelsFile(path string) (Qrels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadQrels(f, path)
}

// ParseRunLine parses one 6-column run line "qid Q0 docid rank score tag"
// (fields separated by any whitespace). The Q0 column is not checked, as in
// trec_eval. The score must be a finite number.
func ParseRunLine(line string) (Entry, error) {
	if !utf8.ValidString(line) {
		return Entry{}, fmt.Errorf("invalid UTF-8")
	}
	f := strings.Fields(line)
	if len(f) != 6 {
		return Entry{}, fmt.Errorf("run line has %d fields, want 6 (qid Q0 docid rank score tag)", len(f))
	}
	rank, err := strconv.Atoi(f[3])
	if err != nil {
		return Entry{}, fmt.Errorf("rank %q is not an integer", f[3])
	}
	score, err := strconv.ParseFloat(f[4], 64)
	if err != nil || math.IsNaN(score) || math.IsInf(score, 0) {
		return Entry{}, fmt.Errorf("score %q is not a finite number", f[4])
	}
	return Entry{QID: f[0], DocID: f[2], Rank: rank, Score: score, Tag: f[5]}, nil
}

// IsRunHeader reports whether line looks like a header row of a run file
// ("qid Q0 docid rank score tag" or similar names), rather than data.
func IsRunHeader(line string) bool {
	f := strings.Fields(line)
	if len(f) != 6 {
		return false
	}
	switch strings.ToLower(f[0]) {
	case "qid", "query_id", "queryid", "topic", "query":
	default:
		return false
	}
	_, err := strconv.ParseFloat(f[4], 64)
	return err != nil
}

// ReadRun parses a run in TREC format. An optional header row (see
// IsRunHeader) is skipped; blank lines are skipped; any other malformed line
// is an error naming name:line.
func ReadRun(r io.Reader, name string) (Run, error) {
	lr := newLineReader(r, name)
	run := Run{}
	first := true
	for {
		line, err := lr.next()
		if err == io.EOF {
			return run, nil
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if first {
			first = false
			if IsRunHeader(line) {
				continue
			}
		}
		e, err := ParseRunLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lr.n, err)
		}
		e.Line = lr.n
		run[e.QID] = append(run[e.QID], e)
	}
}

// ReadRunFile reads a run file; see ReadRun.
func ReadRunFile(path string) (Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadRun(f, path)
}

// Before reports whether a ranks before b in trec_eval's order: higher score
// first, equal scores broken by docid in descending byte order.
func Before(aScore float64, aDoc string, bScore float64, bDoc string) bool {
	if aScore != bScore {
		return aScore > bScore
	}
	return aDoc > bDoc
}

// SortEntries sorts entries into trec_eval's order (see Before).
func SortEntries(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool {
		return Before(es[i].Score, es[i].DocID, es[j].Score, es[j].DocID)
	})
}

// Sort sorts every query's entries into trec_eval's order.
func (r Run) Sort() {
	for _, es := range r {
		SortEntries(es)
	}
}

// QIDs returns the qrels' query ids in ascending byte order.
func (q Qrels) QIDs() []string { return sortedKeys(q) }

// MaxGrade returns the highest relevance grade judged (0 for no judgements).
// Graded qrels (TREC DL grades 0-3) have a MaxGrade above 1.
func (q Qrels) MaxGrade() int {
	top := 0
	for _, docs := range q {
		for _, g := range docs {
			top = max(top, g)
		}
	}
	return top
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
