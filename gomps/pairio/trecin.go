package pairio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gomps/gomps/gomps/trec"
)

// TRECReader yields the pairs of a TREC run: each run line (qid Q0 docid rank
// score tag) joined with its query text from a `qid<TAB>query` file and its
// passage text from a `docid<TAB>text` file. Each file may start with a
// header row. With a header naming its columns (qid and query or text;
// docid, pid or id and text, passage or contents) other columns are
// ignored, so a `set<TAB>qid<TAB>query` file works; without one a line has
// exactly two fields.
//
// The run is read first and kept in memory; the queries file and then the
// passages file are streamed once, keeping only the entries the run names.
// Items come grouped by qid, in the order qids first appear in the run, and
// in file order within a qid. A run entry whose query or passage is missing
// is an error naming its run line (skipped and counted with SkipBad).
type TRECReader struct {
	sk    skipper
	items []Item
	next  int
}

var _ Reader = (*TRECReader)(nil)

// OpenTREC reads a run and its query and passage files by path.
func OpenTREC(runPath, queriesPath, passagesPath string, opt Options) (*TRECReader, error) {
	open := func(p string) (*os.File, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	rf, err := open(runPath)
	if err != nil {
		return nil, err
	}
	defer rf.Close()
	qf, err := open(queriesPath)
	if err != nil {
		return nil, err
	}
	defer qf.Close()
	pf, err := open(passagesPath)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	return NewTRECReader(rf, runPath, qf, queriesPath, pf, passagesPath, opt)
}

type runEntry struct {
	e    trec.Entry
	line int
}

// NewTRECReader reads a run, its queries and its passages from readers; the
// names are used in positions and errors.
func NewTRECReader(run io.Reader, runName string, queries io.Reader, queriesName string, passages io.Reader, passagesName string, opt Options) (*TRECReader, error) {
	t := &TRECReader{sk: skipper{opt: opt}}

	// 1. The run.
	var order []string
	byQID := map[string][]runEntry{}
	seen := map[[2]string]int{}
	lr := newLineReader(run, runName, opt.maxLine())
	first := true
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		if err == nil {
			if strings.TrimSpace(string(line)) == "" {
				continue
			}
			if first {
				first = false
				if opt.Header == HeaderPresent || (opt.Header == HeaderAuto && trec.IsRunHeader(string(line))) {
					continue
				}
			}
			var e trec.Entry
			e, err = trec.ParseRunLine(string(line))
			if err != nil {
				err = lineErr(runName, lr.n, "%v", err)
			} else if prev, dup := seen[[2]string{e.QID, e.DocID}]; dup {
				err = lineErr(runName, lr.n, "qid %s docid %s already on line %d", e.QID, e.DocID, prev)
			} else if err = checkText("qid", e.QID); err != nil {
				err = lineErr(runName, lr.n, "%v", err)
			} else {
				seen[[2]string{e.QID, e.DocID}] = lr.n
				if _, ok := byQID[e.QID]; !ok {
					order = append(order, e.QID)
				}
				byQID[e.QID] = append(byQID[e.QID], runEntry{e, lr.n})
				continue
			}
		}
		if err = t.sk.skip(err); err != nil {
			return nil, err
		}
	}
	seen = nil

	// 2. Query texts the run needs.
	queryText := make(map[string]string, len(byQID))
	for q := range byQID {
		queryText[q] = ""
	}
	haveQuery, err := t.readTable(queries, queriesName, opt, queryText, []string{"qid", "query_id", "id"}, []string{"query", "text"}, "query")
	if err != nil {
		return nil, err
	}

	// 3. Passage texts the run needs.
	passageText := map[string]string{}
	for _, es := range byQID {
		for _, re := range es {
			passageText[re.e.DocID] = ""
		}
	}
	havePassage, err := t.readTable(passages, passagesName, opt, passageText, []string{"docid", "pid", "doc_id", "id"}, []string{"text", "passage", "contents", "body"}, "passage")
	if err != nil {
		return nil, err
	}

	// 4. Join.
	for _, q := range order {
		for _, re := range byQID[q] {
			pos := Pos{runName, re.line}
			if !haveQuery[q] {
				if err := t.sk.skip(&LineError{Pos: pos, Msg: fmt.Sprintf("qid %s not found in %s", q, queriesName)}); err != nil {
					return nil, err
				}
				continue
			}
			if !havePassage[re.e.DocID] {
				if err := t.sk.skip(&LineError{Pos: pos, Msg: fmt.Sprintf("docid %s not found in %s", re.e.DocID, passagesName)}); err != nil {
					return nil, err
				}
				continue
			}
			t.items = append(t.items, Item{
				QID: q, Query: queryText[q], DocID: re.e.DocID, Passage: passageText[re.e.DocID],
				InputRank: re.e.Rank, InputScore: re.e.Score, HasInputScore: true, Pos: pos,
			})
		}
	}
	return t, nil
}

// readTable streams a two-column id/text file, filling want (whose keys are
// the ids needed) and returning which ids were found.
func (t *TRECReader) readTable(r io.Reader, name string, opt Options, want map[string]string, idNames, textNames []string, what string) (map[string]bool, error) {
	found := make(map[string]bool, len(want))
	lr := newLineReader(r, name, opt.maxLine())
	idCol, textCol, nCols := 0, 1, 2
	first := true
	for {
		line, err := lr.next()
		if err == io.EOF {
			return found, nil
		}
		if err == nil {
			if len(line) == 0 {
				continue
			}
			fields := strings.Split(string(line), "\t")
			if first {
				first = false
				ic, tc := colIndex(fields, idNames), colIndex(fields, textNames)
				named := ic >= 0 && tc >= 0 && ic != tc
				if opt.Header == HeaderPresent || (opt.Header == HeaderAuto && named) {
					if named {
						idCol, textCol, nCols = ic, tc, len(fields)
					}
					continue
				}
			}
			err = nil
			switch {
			case len(fields) != nCols:
				err = lineErr(name, lr.n, "%d fields, want %d", len(fields), nCols)
			case fields[idCol] == "" || strings.ContainsAny(fields[idCol], " \r"):
				err = lineErr(name, lr.n, "id %q is empty or contains whitespace", fields[idCol])
			}
			if err == nil {
				id, text := fields[idCol], fields[textCol]
				if _, needed := want[id]; !needed {
					continue
				}
				if e := checkText(what, text); e != nil {
					err = lineErr(name, lr.n, "%v", e)
				} else if what == "query" && strings.TrimSpace(text) == "" {
					err = lineErr(name, lr.n, "empty query")
				} else if found[id] {
					if want[id] != text {
						err = lineErr(name, lr.n, "id %s appears again with a different %s", id, what)
					} else {
						continue
					}
				} else {
					want[id] = text
					found[id] = true
					continue
				}
			}
		}
		var le *LineError
		if !errors.As(err, &le) {
			return nil, err
		}
		if err = t.sk.skip(err); err != nil {
			return nil, err
		}
	}
}

func colIndex(fields, names []string) int {
	for i, f := range fields {
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(f), n) {
				return i
			}
		}
	}
	return -1
}

// Skipped implements Reader.
func (t *TRECReader) Skipped() int { return t.sk.skipped }

// Len returns the number of items the reader yields in all.
func (t *TRECReader) Len() int { return len(t.items) }

// Count returns how many of the items not yet read keep(qid, query) accepts.
func (t *TRECReader) Count(keep func(qid, query string) bool) int {
	n := 0
	for _, it := range t.items[t.next:] {
		if keep(it.QID, it.Query) {
			n++
		}
	}
	return n
}

// Next implements Reader.
func (t *TRECReader) Next() (Item, error) {
	if t.next >= len(t.items) {
		return Item{}, io.EOF
	}
	it := t.items[t.next]
	t.items[t.next] = Item{} // let the texts go once handed out
	t.next++
	return it, nil
}
