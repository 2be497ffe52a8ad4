package pairio

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJSONLLineErrors pins the message of every way a JSONL line is
// malformed, one case per check of parseJSONLLine and its steps.
func TestJSONLLineErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, line, msg string }{
		{"json", `{"query": "q", "passages": [`, "invalid JSON: unexpected EOF"},
		{"two-values", `{"query": "q", "passages": []} {}`, "more than one JSON value on the line"},
		{"array", `[1, 2]`, "invalid JSON: json: cannot unmarshal array into Go value of type pairio.jsonlQuery"},
		{"qid=float", `{"qid": 1.5, "query": "q", "passages": []}`, "qid is 1.5, want a string or an integer"},
		{"qid=space", `{"qid": "a b", "query": "q", "passages": []}`, `qid "a b" is empty or contains whitespace`},
		{"qid=nul", `{"qid": "a\u0000", "query": "q", "passages": []}`, `qid id contains a NUL byte`},
		{"query=absent", `{"passages": ["a"]}`, `no "query"`},
		{"query=null", `{"query": null, "passages": ["a"]}`, `no "query"`},
		{"query=number", `{"query": 3, "passages": ["a"]}`, "query is 3, want a string or an object"},
		{"query=object-bad", `{"query": {"text": 3}, "passages": ["a"]}`, "query: json: cannot unmarshal number into Go struct field jsonlQueryObj.text of type string"},
		{"query=object-no-text", `{"query": {"qid": "1"}, "passages": ["a"]}`, `query object has no "text"`},
		{"query=object-bad-qid", `{"query": {"text": "q", "qid": []}, "passages": ["a"]}`, "query.qid is [], want a string or an integer"},
		{"query=qid-differ", `{"qid": "1", "query": {"text": "q", "qid": "2"}, "passages": []}`, `qid "1" and query.qid "2" differ`},
		{"query=empty", `{"query": " ", "passages": ["a"]}`, "empty query"},
		{"query=nul", `{"query": "q\u0000", "passages": []}`, "query contains a NUL byte"},
		{"shape=none", `{"query": "q"}`, `no "passage", "passages" or "candidates"`},
		{"shape=two", `{"query": "q", "passages": [], "candidates": []}`, `more than one of "passage", "passages" and "candidates"`},
		{"passage=with-text", `{"query": "q", "passage": "p", "text": "t"}`, `"passage" with a top-level "text" or "doc"`},
		{"passage=nul", `{"query": "q", "passage": "p\u0000"}`, "passage contains a NUL byte"},
		{"passage=rank", `{"query": "q", "passage": "p", "rank": 1.5}`, "rank is 1.5, want an integer"},
		{"passage=docid", `{"query": "q", "passage": "p", "docid": ""}`, `docid "" is empty or contains whitespace`},
		{"passages=null", `{"query": "q", "passages": ["a", null]}`, "passages[1] is null"},
		{"passages=nul", `{"query": "q", "passages": ["a\u0000"]}`, "passages[0] contains a NUL byte"},
		{"candidates=null", `{"query": "q", "candidates": [null]}`, "candidates[0] is null"},
		{"candidates=no-text", `{"query": "q", "candidates": [{"docid": "d"}]}`, `candidates[0] has no "text" (or "doc": {"text"|"contents"|"segment"})`},
		{"candidates=rank", `{"query": "q", "candidates": [{"text": "t"}, {"text": "t", "rank": "first"}]}`, `candidates[1].rank is "first", want an integer`},
		{"candidates=docid", `{"query": "q", "candidates": [{"text": "t", "docid": true}]}`, "candidates[0].docid is true, want a string or an integer"},
		{"candidates=text-nul", `{"query": "q", "candidates": [{"doc": {"contents": "\u0000"}}]}`, "candidates[0].text contains a NUL byte"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			items, err := parseJSONLLine([]byte(c.line), Pos{"in.jsonl", 7})
			assert.Nil(t, items)
			var le *LineError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, Pos{"in.jsonl", 7}, le.Pos, "position")
			assert.Equal(t, c.msg, le.Msg, "message")
		})
	}
}

// TestJSONLQueryOf: the query and its id from each place a line may hold
// them.
func TestJSONLQueryOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, line, qid, query string }{
		{"string", `{"query": "q"}`, "", "q"},
		{"string+qid", `{"qid": "a1", "query": "q"}`, "a1", "q"},
		{"string+int-qid", `{"qid": 12, "query": "q"}`, "12", "q"},
		{"object", `{"query": {"text": "q"}}`, "", "q"},
		{"object+qid", `{"query": {"text": "q", "qid": 3}}`, "3", "q"},
		{"object+same-qid", `{"qid": "3", "query": {"text": "q", "qid": 3}}`, "3", "q"},
		{"object+top-qid", `{"qid": "3", "query": {"text": "q"}}`, "3", "q"},
		{"object+null-qid", `{"qid": "3", "query": {"text": "q", "qid": null}}`, "3", "q"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q, err := decodeJSONLLine([]byte(c.line))
			require.NoError(t, err)
			qid, query, err := jsonlQueryOf(q)
			require.NoError(t, err)
			assert.Equal(t, c.qid, qid, "qid")
			assert.Equal(t, c.query, query, "query")
		})
	}
}

// TestJSONLItems: each shape yields its passages in order, each carrying the
// base item's query, id and position.
func TestJSONLItems(t *testing.T) {
	t.Parallel()
	base := Item{QID: "1", Query: "q", Pos: Pos{"f", 3}}
	with := func(passage, docid string, rank int) Item {
		it := base
		it.Passage, it.DocID, it.InputRank = passage, docid, rank
		return it
	}
	for _, c := range []struct {
		name, line string
		want       []Item
	}{
		{"passage", `{"passage": "p", "docid": "d", "rank": 2}`, []Item{with("p", "d", 2)}},
		{"passages", `{"passages": ["a", "b"]}`, []Item{with("a", "", 0), with("b", "", 0)}},
		{"passages=empty", `{"passages": []}`, []Item{}},
		{"candidates", `{"candidates": [{"docid": "x", "text": "a"}, {"doc": {"segment": "b"}, "rank": 5}]}`,
			[]Item{with("a", "x", 0), with("b", "", 5)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q, err := decodeJSONLLine([]byte(c.line))
			require.NoError(t, err)
			items, err := jsonlItems(q, base)
			require.NoError(t, err)
			assert.Equal(t, c.want, items)
		})
	}
}
