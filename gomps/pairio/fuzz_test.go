package pairio

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkItems asserts what every reader promises about its items.
func checkItems(t *testing.T, items []Item) {
	t.Helper()
	last := 0
	for _, it := range items {
		for _, s := range []string{it.QID, it.Query, it.DocID, it.Passage} {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("%s: invalid text %q", it.Pos, s)
			}
		}
		if strings.TrimSpace(it.Query) == "" {
			t.Fatalf("%s: empty query", it.Pos)
		}
		if it.Pos.Line < last {
			t.Fatalf("%s: position went back from line %d", it.Pos, last)
		}
		last = it.Pos.Line
	}
}

func FuzzTSV(f *testing.F) {
	for _, s := range []string{"query\tpassage\nq\tp\n", "q\t\r\n\nq2\tp2", "a\tb\tc\n", "\t\n", "q\t\xff\n", strings.Repeat("x", 300) + "\tp\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		strict, strictErr := readAll(t, NewTSVReader(bytes.NewReader(data), "f", Options{MaxLineBytes: 256}))
		r := NewTSVReader(bytes.NewReader(data), "f", Options{MaxLineBytes: 256, SkipBad: true})
		items, err := readAll(t, r)
		if err != nil {
			t.Fatalf("skip-bad mode failed: %v", err)
		}
		if strictErr == nil && (r.Skipped() != 0 || len(strict) != len(items)) {
			t.Fatalf("strict read succeeded with %d items, skip-bad read %d and skipped %d", len(strict), len(items), r.Skipped())
		}
		checkItems(t, items)
		for _, it := range items {
			if strings.ContainsAny(it.Query+it.Passage, "\t\n") {
				t.Fatalf("%s: tab or newline inside a field", it.Pos)
			}
		}
		// Round trip: what the writer writes reads back as the same pairs.
		var b bytes.Buffer
		w := NewTSVWriter(&b, WriterOptions{})
		for i, it := range items {
			if err := w.WriteGroup([]Scored{{Item: it, Score: float64(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		// Split the output by hand: each line must hold the two input fields
		// unchanged, then the score. (Reading it back through a TSV reader
		// after cutting the score column would make a passage's trailing CR
		// look like a CRLF line end.)
		out := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(items) == 0 {
			out = nil
		}
		if len(out) != len(items) {
			t.Fatalf("round trip: %d lines, want %d", len(out), len(items))
		}
		for i, line := range out {
			f := strings.Split(line, "\t")
			if len(f) != 3 || f[0] != items[i].Query || f[1] != items[i].Passage {
				t.Fatalf("round trip item %d: %q != %q %q", i, line, items[i].Query, items[i].Passage)
			}
		}
	})
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"query": "q1", "passages": ["a", ""]}`,
		`{"set": "dl19", "qid": "7", "query": "q2", "candidates": [{"docid": "d1", "rank": 1, "bm25_score": 2.5, "text": "t1"}, {"docid": 42, "text": "t2"}]}`,
		`{"query": {"text": "q3", "qid": 9}, "candidates": [{"docid": "x", "doc": {"segment": "s"}}]}`,
		`{"qid": 1, "query": "q", "docid": "d", "passage": "p", "rank": 3}`, `{"query": "q", "passage": "p", "passages": []}`,
		`{"query": "q", "passages": [null]}`, `[]`, `{"query": "\u0000"}`, "{}\n{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readAll(t, NewJSONLReader(bytes.NewReader(data), "f", Options{MaxLineBytes: 4096}))
		r := NewJSONLReader(bytes.NewReader(data), "f", Options{MaxLineBytes: 4096, SkipBad: true})
		items, err := readAll(t, r)
		if err != nil {
			t.Fatalf("skip-bad mode failed: %v", err)
		}
		checkItems(t, items)
		// Round trip through the JSONL writer, one group per source line.
		var b bytes.Buffer
		w := NewJSONLWriter(&b, WriterOptions{})
		for i := 0; i < len(items); {
			j := i
			for j < len(items) && items[j].Pos == items[i].Pos {
				j++
			}
			g := make([]Scored, 0, j-i)
			for _, it := range items[i:j] {
				g = append(g, Scored{Item: it, Score: 1})
			}
			if err := w.WriteGroup(g); err != nil {
				t.Fatal(err)
			}
			i = j
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		back, err := readAll(t, NewJSONLReader(&b, "b", Options{}))
		if err != nil {
			t.Fatalf("writer output does not read back: %v\n%s", err, b.String())
		}
		if len(back) != len(items) {
			t.Fatalf("round trip: %d items, want %d", len(back), len(items))
		}
		for i := range back {
			a, z := items[i], back[i]
			if a.QID != z.QID || a.Query != z.Query || a.DocID != z.DocID || a.Passage != z.Passage {
				t.Fatalf("round trip item %d: %+v != %+v", i, z, a)
			}
		}
	})
}

func FuzzTREC(f *testing.F) {
	f.Add([]byte("qid Q0 docid rank score tag\n1 Q0 a 1 2.5 t\n1 Q0 b 2 1 t\n"), []byte("set\tqid\tquery\nx\t1\tq\n"), []byte("docid\ttext\na\tpa\nb\t\n"))
	f.Add([]byte("1 Q0 a 1 2 t\n1 Q0 a 1 2 t\n"), []byte("1\tq\n1\tq2\n"), []byte("a\tp\n"))
	f.Add([]byte("1 Q0 a x 2 t\n"), []byte("\t\n"), []byte("a\t\xff\n"))
	f.Fuzz(func(t *testing.T, run, queries, passages []byte) {
		opt := Options{MaxLineBytes: 1024}
		_, _ = NewTRECReader(bytes.NewReader(run), "r", bytes.NewReader(queries), "q", bytes.NewReader(passages), "p", opt)
		opt.SkipBad = true
		r, err := NewTRECReader(bytes.NewReader(run), "r", bytes.NewReader(queries), "q", bytes.NewReader(passages), "p", opt)
		if err != nil {
			t.Fatalf("skip-bad mode failed: %v", err)
		}
		items, err := readAll(t, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.QID == "" || it.DocID == "" {
				t.Fatalf("%s: item without ids", it.Pos)
			}
			if !utf8.ValidString(it.Query+it.Passage) || strings.TrimSpace(it.Query) == "" {
				t.Fatalf("%s: bad text", it.Pos)
			}
		}
		// A reranked run of the items is always writable.
		var b bytes.Buffer
		w := NewTRECWriter(&b, WriterOptions{})
		for _, g := range groupByQID(items) {
			if err := w.WriteGroup(g); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func groupByQID(items []Item) [][]Scored {
	var out [][]Scored
	for i := 0; i < len(items); {
		j := i
		var g []Scored
		for j < len(items) && items[j].QID == items[i].QID {
			g = append(g, Scored{Item: items[j], Score: items[j].InputScore})
			j++
		}
		out = append(out, g)
		i = j
	}
	return out
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{"q\tp\n", `{"query": "q", "passage": "p"}`, "\uFEFF\r\n\n{\"a\":\t1}", "{x\ty\n", "", "\n\n\n", "[]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		format, rest, err := Sniff(bytes.NewReader(data), "f", 64)
		if err != nil {
			if !errors.Is(err, ErrAmbiguousFormat) {
				t.Fatalf("error %v does not match ErrAmbiguousFormat", err)
			}
			return
		}
		if format != FormatTSV && format != FormatJSONL {
			t.Fatalf("format %q", format)
		}
		back, err := io.ReadAll(rest)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("bytes not handed back: %q, %v", back, err)
		}
	})
}
