package main

import (
	"errors"
	"io"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/trec"
)

// TestExamplesAgree checks that the README's example files hold the same
// pairs in every format, and that the qrels judge every passage.
func TestExamplesAgree(t *testing.T) {
	ex := func(name string) string { return filepath.Join("..", "..", "examples", name) }
	pairs := func(r pairio.Reader) []string {
		t.Helper()
		items, err := readAllItems(r)
		require.NoError(t, err)
		var out []string
		for _, it := range items {
			out = append(out, it.Query+"\t"+it.Passage)
		}
		sort.Strings(out)
		return out
	}
	open := func(name string) pairio.Reader {
		t.Helper()
		r, err := pairio.Open(ex(name), "", pairio.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		return r
	}
	want := pairs(open("pairs.jsonl"))
	require.Len(t, want, 12)
	assert.Equal(t, want, pairs(open("queries.jsonl")), "queries.jsonl")
	assert.Equal(t, want, pairs(open("candidates.jsonl")), "candidates.jsonl")
	tr, err := pairio.OpenTREC(ex("first-stage.run"), ex("queries.tsv"), ex("passages.tsv"), pairio.Options{})
	require.NoError(t, err)
	assert.Equal(t, want, pairs(tr), "the TREC run and its files")

	qrels, err := trec.ReadQrelsFile(ex("qrels.txt"))
	require.NoError(t, err)
	items, err := readAllItems(open("pairs.jsonl"))
	require.NoError(t, err)
	for _, it := range items {
		_, ok := qrels[it.QID][it.DocID]
		assert.True(t, ok, "qrels judge %s %s", it.QID, it.DocID)
	}
}

// readAllItems drains r.
func readAllItems(r pairio.Reader) ([]pairio.Item, error) {
	var items []pairio.Item
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
}
