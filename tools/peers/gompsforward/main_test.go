//go:build cgo && !darwin

package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
)

// gpb1 builds a batch file as peers.py's write_batches writes it.
func gpb1(t *testing.T, magic string, bs []batch, cut int) string {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(magic)
	w := func(v any) { require.NoError(t, binary.Write(&buf, binary.LittleEndian, v)) }
	w(int32(len(bs)))
	for _, b := range bs {
		w([2]int32{int32(b.rows), int32(b.seq)})
		w(b.ids)
		w(b.types)
		w(b.lengths)
	}
	data := buf.Bytes()
	if cut > 0 {
		data = data[:len(data)-cut]
	}
	path := filepath.Join(t.TempDir(), "batches.bin")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func TestReadBatches(t *testing.T) {
	t.Parallel()
	b1 := batch{rows: 2, seq: 3, ids: []int32{101, 7, 102, 101, 102, 0}, types: []int32{0, 0, 1, 0, 1, 0},
		lengths: []int32{3, 2}}
	b2 := batch{rows: 1, seq: 1, ids: []int32{101}, types: []int32{0}, lengths: []int32{1}}
	bad := batch{rows: 0, seq: 3}

	got, err := readBatches(gpb1(t, "GPB1", []batch{b1, b2}, 0))
	require.NoError(t, err)
	assert.Equal(t, []batch{b1, b2}, got, "round trip")

	for _, tc := range []struct {
		name, magic string
		bs          []batch
		cut         int
		want        string
	}{
		{"bad-magic", "GPB2", []batch{b1}, 0, "not a GPB1 batch file"},
		{"no-batches", "GPB1", nil, 0, "bad batch count"},
		{"truncated", "GPB1", []batch{b1, b2}, 2, "batch 1"},
		{"zero-rows", "GPB1", []batch{bad}, 0, "bad shape 0x3"},
	} {
		t.Run("case="+tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := readBatches(gpb1(t, tc.magic, tc.bs, tc.cut))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want, "error names the problem")
		})
	}
}

func TestReadPairs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	got, err := readPairs(write("ok.jsonl", `{"q":"who","p":"me"}`+"\n"+`{"q":"x","p":""}`+"\n"))
	require.NoError(t, err)
	assert.Equal(t, []gomps.Pair{{Query: "who", Passage: "me"}, {Query: "x", Passage: ""}}, got)
	_, err = readPairs(write("empty.jsonl", ""))
	assert.ErrorContains(t, err, "no pairs")
	_, err = readPairs(write("bad.jsonl", `{"q":"who","p":"me"}`+"\n{\n"))
	assert.ErrorContains(t, err, "pair 2")
}
