package pairio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAll drains r.
func readAll(t testing.TB, r Reader) ([]Item, error) {
	t.Helper()
	var items []Item
	for {
		it, err := r.Next()
		if err == io.EOF {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
}

// groupSizes drains r through Groups and returns each group's size.
func groupSizes(t *testing.T, r Reader) []int {
	t.Helper()
	g := Groups(r)
	var sizes []int
	for {
		grp, err := g.Next()
		if errors.Is(err, io.EOF) {
			return sizes
		}
		require.NoError(t, err)
		sizes = append(sizes, len(grp))
	}
}

func TestTSVReader(t *testing.T) {
	in := "query\tpassage\nq1\tp1\r\n\nq1\t\nq2\tp 2\n"
	items, err := readAll(t, NewTSVReader(strings.NewReader(in), "in.tsv", Options{}))
	require.NoError(t, err)
	require.Len(t, items, 3)
	assert.Equal(t, Item{Query: "q1", Passage: "p1", Pos: Pos{"in.tsv", 2}}, items[0], "CRLF stripped")
	assert.Equal(t, Item{Query: "q1", Passage: "", Pos: Pos{"in.tsv", 4}}, items[1], "empty passage is valid")
	assert.Equal(t, "in.tsv:5", items[2].Pos.String())

	t.Run("whitespace-only lines are blank", func(t *testing.T) {
		items, err := readAll(t, NewTSVReader(strings.NewReader("q1\tp1\n   \n\t\n \t \r\nq2\tp2\n"), "ws.tsv", Options{}))
		require.NoError(t, err)
		require.Len(t, items, 2)
		assert.Equal(t, "ws.tsv:5", items[1].Pos.String(), "line numbers still count them")
	})
	t.Run("header=absent", func(t *testing.T) {
		items, err := readAll(t, NewTSVReader(strings.NewReader("query\tpassage\n"), "x", Options{Header: HeaderAbsent}))
		require.NoError(t, err)
		assert.Equal(t, []Item{{Query: "query", Passage: "passage", Pos: Pos{"x", 1}}}, items)
	})
	t.Run("header=present", func(t *testing.T) {
		items, err := readAll(t, NewTSVReader(strings.NewReader("Q\tP\nq\tp\n"), "x", Options{Header: HeaderPresent}))
		require.NoError(t, err)
		assert.Len(t, items, 1)
	})
	t.Run("header=auto/not-literal", func(t *testing.T) {
		items, err := readAll(t, NewTSVReader(strings.NewReader("Query\tPassage\n"), "x", Options{}))
		require.NoError(t, err)
		assert.Len(t, items, 1, "only the literal header is a header")
	})

	for name, line := range map[string]string{
		"fields=1":    "just a query",
		"fields=3":    "q\tp\textra",
		"query=empty": "\tp",
		"query=space": "  \tp",
		"utf8":        "q\t\xff\xfe",
		"nul":         "q\tp\x00",
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := readAll(t, NewTSVReader(strings.NewReader("a\tb\n"+line+"\nc\td\n"), "in.tsv", Options{}))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), "in.tsv:2")

			var skipped []string
			r := NewTSVReader(strings.NewReader("a\tb\n"+line+"\nc\td\n"), "in.tsv", Options{SkipBad: true, OnSkip: func(e *LineError) { skipped = append(skipped, e.Pos.String()) }})
			items, err := readAll(t, r)
			require.NoError(t, err)
			assert.Len(t, items, 2)
			assert.Equal(t, 1, r.Skipped())
			assert.Equal(t, []string{"in.tsv:2"}, skipped)
		})
	}
}

func TestByteOrderMark(t *testing.T) {
	items, err := readAll(t, NewTSVReader(strings.NewReader("\uFEFFquery\tpassage\nq\tp\n"), "bom.tsv", Options{}))
	require.NoError(t, err)
	assert.Equal(t, []Item{{Query: "q", Passage: "p", Pos: Pos{"bom.tsv", 2}}}, items, "BOM dropped, header recognized")
	items, err = readAll(t, NewJSONLReader(strings.NewReader("\uFEFF{\"query\": \"q\", \"passages\": [\"p\"]}\n"), "bom.jsonl", Options{}))
	require.NoError(t, err)
	assert.Len(t, items, 1)
}

func TestLineTooLong(t *testing.T) {
	long := "q\t" + strings.Repeat("x", 200)
	for _, skip := range []bool{false, true} {
		r := NewTSVReader(strings.NewReader("a\tb\n"+long+"\nc\td"), "f", Options{MaxLineBytes: 100, SkipBad: skip})
		items, err := readAll(t, r)
		if !skip {
			assert.ErrorContains(t, err, "f:2: line longer than 100 bytes")
			continue
		}
		require.NoError(t, err)
		require.Len(t, items, 2)
		assert.Equal(t, Pos{"f", 3}, items[1].Pos, "line count survives the skipped long line")
		assert.Equal(t, "d", items[1].Passage, "last line without newline")
	}
}

func TestJSONLReaderShapes(t *testing.T) {
	in := strings.Join([]string{
		`{"query": "q1", "passages": ["a", ""]}`,
		``,
		`{"set": "dl19", "qid": "7", "query": "q2", "candidates": [{"docid": "d1", "rank": 1, "bm25_score": 2.5, "text": "t1"}, {"docid": 42, "text": "t2", "score": -1}]}`,
		`{"query": {"text": "q3", "qid": 9}, "candidates": [{"docid": "x", "doc": {"segment": "s"}}, {"docid": "y", "doc": {"contents": "c"}}, {"doc": {"text": "dt"}}]}`,
		`{"qid": 5, "query": "q4", "candidates": []}`,
	}, "\n")
	items, err := readAll(t, NewJSONLReader(strings.NewReader(in), "in.jsonl", Options{}))
	require.NoError(t, err)
	require.Len(t, items, 7)
	assert.Equal(t, Item{Query: "q1", Passage: "a", Pos: Pos{"in.jsonl", 1}}, items[0])
	assert.Equal(t, "", items[1].Passage)
	assert.Equal(t, Item{QID: "7", Query: "q2", DocID: "d1", Passage: "t1", InputRank: 1, InputScore: 2.5, HasInputScore: true, Pos: Pos{"in.jsonl", 3}}, items[2])
	assert.Equal(t, "42", items[3].DocID, "integer docid")
	assert.Equal(t, -1.0, items[3].InputScore)
	assert.Equal(t, Item{QID: "9", Query: "q3", DocID: "x", Passage: "s", Pos: Pos{"in.jsonl", 4}}, items[4])
	assert.Equal(t, "c", items[5].Passage)
	assert.Equal(t, "dt", items[6].Passage)

	for name, line := range map[string]string{
		"json":         `{"query": "q", "passages": [`,
		"two-values":   `{"query": "q", "passages": []} {}`,
		"no-query":     `{"passages": ["a"]}`,
		"empty-query":  `{"query": " ", "passages": ["a"]}`,
		"query=number": `{"query": 3, "passages": ["a"]}`,
		"no-list":      `{"query": "q"}`,
		"both-lists":   `{"query": "q", "passages": [], "candidates": []}`,
		"null-passage": `{"query": "q", "passages": [null]}`,
		"no-text":      `{"query": "q", "candidates": [{"docid": "d"}]}`,
		"qid-float":    `{"qid": 1.5, "query": "q", "passages": []}`,
		"qid-space":    `{"qid": "a b", "query": "q", "passages": []}`,
		"qid-differ":   `{"qid": "1", "query": {"text": "q", "qid": "2"}, "passages": []}`,
		"rank-text":    `{"query": "q", "candidates": [{"text": "t", "rank": "first"}]}`,
		"nul":          `{"query": "q\u0000", "passages": []}`,
		"array":        `[1, 2]`,
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := readAll(t, NewJSONLReader(strings.NewReader(`{"query":"ok","passages":["p"]}`+"\n"+line+"\n"), "in.jsonl", Options{}))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), "in.jsonl:2")
			r := NewJSONLReader(strings.NewReader(line+"\n"+`{"query":"ok","passages":["p"]}`), "in.jsonl", Options{SkipBad: true})
			items, err := readAll(t, r)
			require.NoError(t, err)
			assert.Len(t, items, 1)
			assert.Equal(t, 1, r.Skipped())
		})
	}
}

func TestTRECReader(t *testing.T) {
	run := "qid Q0 docid rank score tag\n2 Q0 b 1 3.5 bm25\n1 Q0 a 1 9 bm25\n2 Q0 a 2 1.5 bm25\n"
	queries := "set\tqid\tquery\ndl\t1\tfirst query\ndl\t2\tsecond\ndl\t3\tunused\n"
	passages := "a\tpassage a\nz\tunused\nb\t\n"
	r, err := NewTRECReader(strings.NewReader(run), "r.run", strings.NewReader(queries), "q.tsv", strings.NewReader(passages), "p.tsv", Options{})
	require.NoError(t, err)
	items, err := readAll(t, r)
	require.NoError(t, err)
	require.Len(t, items, 3)
	assert.Equal(t, Item{QID: "2", Query: "second", DocID: "b", Passage: "", InputRank: 1, InputScore: 3.5, HasInputScore: true, Pos: Pos{"r.run", 2}}, items[0])
	assert.Equal(t, "a", items[1].DocID, "grouped by qid in first-appearance order")
	assert.Equal(t, "2", items[1].QID)
	assert.Equal(t, Item{QID: "1", Query: "first query", DocID: "a", Passage: "passage a", InputRank: 1, InputScore: 9, HasInputScore: true, Pos: Pos{"r.run", 3}}, items[2])

	for name, tc := range map[string]struct{ run, queries, passages, want string }{
		"run-fields":      {"1 Q0 a 1 2\n", "1\tq\n", "a\tp\n", "r.run:1"},
		"run-dup":         {"1 Q0 a 1 2 t\n1 Q0 a 2 1 t\n", "1\tq\n", "a\tp\n", "r.run:2"},
		"missing-query":   {"1 Q0 a 1 2 t\n9 Q0 a 1 2 t\n", "1\tq\n", "a\tp\n", "r.run:2: qid 9 not found in q.tsv"},
		"missing-passage": {"1 Q0 a 1 2 t\n1 Q0 b 1 2 t\n", "1\tq\n", "a\tp\n", "r.run:2: docid b not found in p.tsv"},
		"queries-fields":  {"1 Q0 a 1 2 t\n", "1\tq\n1\tq\textra\n", "a\tp\n", "q.tsv:2"},
		"passage-utf8":    {"1 Q0 a 1 2 t\n", "1\tq\n", "a\t\xff\n", "p.tsv:1"},
		"passage-differs": {"1 Q0 a 1 2 t\n", "1\tq\n", "a\tp\nb\tx\na\tp2\n", "p.tsv:3"},
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := NewTRECReader(strings.NewReader(tc.run), "r.run", strings.NewReader(tc.queries), "q.tsv", strings.NewReader(tc.passages), "p.tsv", Options{})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tc.want)

			r, err := NewTRECReader(strings.NewReader(tc.run), "r.run", strings.NewReader(tc.queries), "q.tsv", strings.NewReader(tc.passages), "p.tsv", Options{SkipBad: true})
			require.NoError(t, err)
			skipped := 1
			if name == "passage-utf8" {
				skipped = 2 // the passage line, then the run line whose passage is now missing
			}
			assert.Equal(t, skipped, r.Skipped())
		})
	}
}

// passageGen produces n lines "d<i>\t<filler>" without holding them.
type passageGen struct {
	i, n int
	buf  []byte
}

func (g *passageGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i < g.n {
		g.buf = fmt.Appendf(g.buf, "d%d\tpassage %d %s\n", g.i, g.i, strings.Repeat("filler ", 30))
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// TestTRECPassagesStreamed reads a passages file of about 45 MB and checks
// that only the passages the run needs stay in memory.
func TestTRECPassagesStreamed(t *testing.T) {
	const n = 200_000
	run := "1 Q0 d7 1 1 t\n1 Q0 d199999 2 0.5 t\n"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	gen := &passageGen{n: n}
	r, err := NewTRECReader(strings.NewReader(run), "r", strings.NewReader("1\tq\n"), "q", gen, "p", Options{})
	require.NoError(t, err)
	runtime.GC()
	runtime.ReadMemStats(&after)
	require.Equal(t, n, gen.i, "the whole file was read")
	items, err := readAll(t, r)
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.True(t, strings.HasPrefix(items[1].Passage, "passage 199999 filler"))
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, grown, int64(8<<20), "retained heap after reading ~45 MB of passages")
}

// sharedTRECDir returns ../shared/data/trec-dl, or skips (fails under CI=true).
func sharedTRECDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "data", "trec-dl"))
	if _, err := os.Stat(filepath.Join(dir, "rerank.dl19.bm25-top100.jsonl")); err != nil {
		if os.Getenv("CI") == "true" && os.Getenv("GOMPS_SHARED_OPTIONAL") != "1" {
			t.Fatalf("shared data missing under CI=true: %v", err)
		}
		t.Skipf("shared data not found: %v", err)
	}
	return dir
}

// TestSharedFiles reads the real JSONL files and the same pairs as a TREC
// run over queries.tsv and passages.tsv, and checks the two agree.
func TestSharedFiles(t *testing.T) {
	dir := sharedTRECDir(t)
	for _, set := range []string{"dl19", "dl21", "dl22"} {
		t.Run("set="+set, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, "rerank."+set+".bm25-top100.jsonl"))
			require.NoError(t, err)
			defer f.Close()
			js, err := readAll(t, NewJSONLReader(f, f.Name(), Options{}))
			require.NoError(t, err)
			want := map[string]int{"dl19": 4300, "dl21": 5300, "dl22": 7600}[set]
			require.Len(t, js, want)
			assert.Equal(t, 1, js[0].InputRank)
			assert.True(t, js[0].HasInputScore)
			assert.NotEmpty(t, js[0].QID)
			assert.NotEmpty(t, js[0].DocID)

			// The same pairs as a TREC run written from the JSONL items.
			var run strings.Builder
			for _, it := range js {
				fmt.Fprintf(&run, "%s Q0 %s %d %v bm25\n", it.QID, it.DocID, it.InputRank, it.InputScore)
			}
			runPath := filepath.Join(t.TempDir(), set+".run")
			require.NoError(t, os.WriteFile(runPath, []byte(run.String()), 0o644))
			tr, err := OpenTREC(runPath, filepath.Join(dir, "queries.tsv"), filepath.Join(dir, "passages.tsv"), Options{})
			require.NoError(t, err)
			ts, err := readAll(t, tr)
			require.NoError(t, err)
			require.Len(t, ts, len(js))
			for i := range js {
				if js[i].QID != ts[i].QID || js[i].DocID != ts[i].DocID || js[i].Query != ts[i].Query || js[i].Passage != ts[i].Passage {
					t.Fatalf("item %d differs: jsonl %s %s, trec %s %s", i, js[i].QID, js[i].DocID, ts[i].QID, ts[i].DocID)
				}
			}
		})
	}
}

func TestOpenAndGroups(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tsv")
	require.NoError(t, os.WriteFile(p, []byte("q1\ta\nq1\tb\nq2\tc\nq1\td\n"), 0o644))
	f, err := FormatOf(p)
	require.NoError(t, err)
	r, err := Open(p, f, Options{})
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, []int{2, 1, 1}, groupSizes(t, r), "consecutive items of one query form a group")

	_, err = Open(p, FormatTREC, Options{})
	assert.Error(t, err)
	_, err = FormatOf("x.bin")
	assert.Error(t, err)
}
