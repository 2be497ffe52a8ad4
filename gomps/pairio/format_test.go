package pairio

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONLOnePairPerLine(t *testing.T) {
	in := strings.Join([]string{
		`{"qid": "1", "query": "q1", "docid": "d1", "passage": "a", "rank": 2, "score": 7.5}`,
		`{"qid": 1, "query": "q1", "passage": "b", "extra": true}`,
		`{"query": "q2", "passage": ""}`,
		`{"query": "q2", "docid": 9, "passage": "c", "bm25_score": 1}`,
	}, "\n")
	items, err := readAll(t, NewJSONLReader(strings.NewReader(in), "in.jsonl", Options{}))
	require.NoError(t, err)
	require.Len(t, items, 4)
	assert.Equal(t, Item{QID: "1", Query: "q1", DocID: "d1", Passage: "a", InputRank: 2, InputScore: 7.5, HasInputScore: true, Pos: Pos{"in.jsonl", 1}}, items[0])
	assert.Equal(t, Item{QID: "1", Query: "q1", Passage: "b", Pos: Pos{"in.jsonl", 2}}, items[1], "unknown fields ignored")
	assert.Equal(t, Item{Query: "q2", Pos: Pos{"in.jsonl", 3}}, items[2], "an empty passage is a pair")
	assert.Equal(t, "9", items[3].DocID)

	assert.Equal(t, []int{2, 2}, groupSizes(t, NewJSONLReader(strings.NewReader(in), "in.jsonl", Options{})),
		"consecutive one-pair lines of a query form one group")

	for name, line := range map[string]string{
		"passage+passages":   `{"query": "q", "passage": "p", "passages": ["a"]}`,
		"passage+candidates": `{"query": "q", "passage": "p", "candidates": []}`,
		"passage=null":       `{"query": "q", "passage": null}`,
		"passage=number":     `{"query": "q", "passage": 3}`,
		"passage+text":       `{"query": "q", "passage": "p", "text": "t"}`,
		"passage-invalid":    "{\"query\": \"q\", \"passage\": \"\\u0000\"}",
		"docid-space":        `{"query": "q", "docid": "a b", "passage": "p"}`,
		"rank-text":          `{"query": "q", "passage": "p", "rank": "first"}`,
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := readAll(t, NewJSONLReader(strings.NewReader(line+"\n"), "in.jsonl", Options{}))
			require.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), "in.jsonl:1")
		})
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Format
		err      string
	}{
		{"tsv", "q\tp\n", FormatTSV, ""},
		{"tsv-header", "query\tpassage\nq\tp\n", FormatTSV, ""},
		{"tsv-brace-query", "{not json\tp\n", FormatTSV, ""},
		{"jsonl-pair", `{"query": "q", "passage": "p"}` + "\n", FormatJSONL, ""},
		{"jsonl-bom-crlf-blank", "\uFEFF\n  \r\n" + `{"query": "q", "passages": ["a\tb"]}` + "\r\n", FormatJSONL, ""},
		{"jsonl-invalid", `{"query": "q", "passage": ` + "\n", FormatJSONL, ""},
		{"jsonl-two-tabs", "{\"query\":\t\"q\",\t\"passage\": \"p\"}\n", FormatJSONL, ""},
		{"empty", "", FormatTSV, ""},
		{"blank", "\n\n", FormatTSV, ""},
		{"ambiguous", "{\"query\":\t\"q\", \"passage\": \"p\"}\n", "", "a JSON object and also two tab-separated fields"},
		{"neither", "just words\n", "", "neither a JSON object nor query<TAB>passage"},
		{"array", "[1, 2]\n", "", "neither"},
	} {
		t.Run("case="+tc.name, func(t *testing.T) {
			f, rest, err := Sniff(strings.NewReader(tc.in), "<stdin>", 1024)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrAmbiguousFormat)
				assert.Contains(t, err.Error(), "<stdin>: its first line is "+tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, f)
			back, err := io.ReadAll(rest)
			require.NoError(t, err)
			assert.Equal(t, tc.in, string(back), "every byte is handed back")
		})
	}
	t.Run("case=long-first-line", func(t *testing.T) {
		in := `{"query": "q", "passages": ["` + strings.Repeat("x", 200<<10) + `"]}` + "\nrest\n"
		f, rest, err := Sniff(strings.NewReader(in), "f", 1<<20)
		require.NoError(t, err)
		assert.Equal(t, FormatJSONL, f)
		back, err := io.ReadAll(rest)
		require.NoError(t, err)
		assert.Equal(t, in, string(back))
	})

	// Open with no format sniffs, and says what it found.
	dir := t.TempDir()
	p := filepath.Join(dir, "pairs.data")
	require.NoError(t, os.WriteFile(p, []byte(`{"query": "q", "passage": "p"}`+"\n"), 0o644))
	r, err := Open(p, "", Options{})
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, FormatJSONL, r.Format())
	items, err := readAll(t, r)
	require.NoError(t, err)
	assert.Equal(t, []Item{{Query: "q", Passage: "p", Pos: Pos{p, 1}}}, items)
}

func TestTSVWriterColumns(t *testing.T) {
	pair := func(qid, docid string) Scored {
		return Scored{Item: Item{QID: qid, DocID: docid, Query: "q", Passage: "p"}, Score: 1.5}
	}
	for _, tc := range []struct {
		name   string
		first  Scored
		header bool
		want   string
	}{
		{"ids=none", pair("", ""), false, "q\tp\t1.5\n"},
		{"ids=qid", pair("7", ""), false, "7\tq\tp\t1.5\n"},
		{"ids=docid", pair("", "d"), false, "d\tq\tp\t1.5\n"},
		{"ids=both", pair("7", "d"), false, "7\td\tq\tp\t1.5\n"},
		{"ids=none/header", pair("", ""), true, "query\tpassage\tscore\nq\tp\t1.5\n"},
		{"ids=qid/header", pair("7", ""), true, "qid\tquery\tpassage\tscore\n7\tq\tp\t1.5\n"},
		{"ids=both/header", pair("7", "d"), true, "qid\tdocid\tquery\tpassage\tscore\n7\td\tq\tp\t1.5\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := NewTSVWriter(&b, WriterOptions{Header: tc.header})
			require.NoError(t, w.WriteGroup([]Scored{tc.first}))
			require.NoError(t, w.Flush())
			assert.Equal(t, tc.want, b.String())
		})
	}
	var b bytes.Buffer
	w := NewTSVWriter(&b, WriterOptions{Header: true})
	require.NoError(t, w.Flush())
	assert.Equal(t, "query\tpassage\tscore\n", b.String(), "no pairs: the header of id-less input")
}
