package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
)

// The progress goroutine writes to a plain bytes.Buffer: the tests read it
// only after end, which waits for that goroutine to exit.

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestProgressLinesEveryFiveSeconds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total int
		want  []string
	}{
		{"total=known", 1000, []string{
			"score: start",
			"score: 50/1000 pairs (5%), 10 pairs/s, eta 1m35s",
			"score: 100/1000 pairs (10%), 10 pairs/s, eta 1m30s",
			"score: end",
		}},
		{"total=unknown", 0, []string{"score: start", "score: 50 pairs, 10 pairs/s", "score: 100 pairs, 10 pairs/s", "score: end"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var done atomic.Int64
				var buf bytes.Buffer
				p := newProgress(&buf, false, false, func() int { return int(done.Load()) })
				p.setTotal(tc.total)
				p.begin("score: start")
				// 10 pairs a second, booked half-way through each second so
				// no booking coincides with a tick; 12.5 s of work.
				time.Sleep(500 * time.Millisecond)
				for range 12 {
					done.Add(10)
					time.Sleep(time.Second)
				}
				p.end("score: end")
				assert.Equal(t, tc.want, lines(buf.String()), "a line at the start, at 5 s and 10 s, and at the end")
				assert.NotContains(t, buf.String(), "\r", "no redraws off a terminal")
			})
		})
	}
}

func TestProgressBarRedrawsTwiceASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var done atomic.Int64
		var buf bytes.Buffer
		p := newProgress(&buf, false, true, func() int { return int(done.Load()) })
		p.setTotal(200)
		p.begin("score: start (not shown on a terminal)")
		for range 4 {
			time.Sleep(500*time.Millisecond - time.Millisecond)
			done.Add(25)
			time.Sleep(time.Millisecond)
		}
		synctest.Wait() // the draw at 2 s is done
		p.end("score: end")
		out := buf.String()
		mid, ok := strings.CutSuffix(out, "\r\x1b[Kscore: end\n")
		require.True(t, ok, "the bar is cleared before the summary: %q", out)
		assert.NotContains(t, out, "score: start", "the start line is not printed under a bar")
		// 2 s: the first draw plus one every 250 ms.
		assert.GreaterOrEqual(t, strings.Count(mid, "\r"), 1+2*2, "redrawn at least twice a second")
		last := mid[strings.LastIndex(mid, "\r")+1:]
		assert.Equal(t, "score: ["+strings.Repeat("=", 15)+strings.Repeat(" ", 15)+"]  50% 100/200 pairs, 50 pairs/s, eta 2s\x1b[K", last)
	})
}

func TestProgressQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		p := newProgress(&buf, true, true, func() int { return 1 })
		p.begin("score: start")
		time.Sleep(11 * time.Second)
		p.end("score: end")
		p.end("score: end again")
		assert.Empty(t, buf.String())
	})
}

// chunkScorer scores one Do call in two halves: it books half the
// pairs in its counters, works for 6 s, then books the rest.
type chunkScorer struct{ scored atomic.Uint64 }

func (f *chunkScorer) Do(ctx context.Context, req gomps.Request) (gomps.Result, error) {
	pairs := req.Pairs
	f.scored.Add(uint64(len(pairs) / 2))
	time.Sleep(6 * time.Second)
	f.scored.Add(uint64(len(pairs) - len(pairs)/2))
	return gomps.Result{Scores: make([]float32, len(pairs))}, nil
}

func (f *chunkScorer) Stats() gomps.Stats { return gomps.Stats{PairsScored: f.scored.Load()} }

func TestProgressMovesWithinAChunk(t *testing.T) {
	var in strings.Builder
	const n = 3000 // less than scoreChunk: one Do call
	for i := range n {
		in.WriteString("q\tpassage ")
		in.WriteString(strings.Repeat("x", i%7))
		in.WriteString("\n")
	}
	require.Less(t, n, scoreChunk)
	synctest.Test(t, func(t *testing.T) {
		fs := &chunkScorer{}
		fs.scored.Store(40) // earlier work on the same engine is not counted
		var buf bytes.Buffer
		p := newProgress(&buf, false, false, scoredSince(fs))
		p.setTotal(n)
		p.begin("score: start")
		w, err := pairio.NewWriter(io.Discard, pairio.FormatTSV, pairio.WriterOptions{})
		require.NoError(t, err)
		got, err := scoreStream(context.Background(), fs, pairio.Groups(pairio.NewTSVReader(strings.NewReader(in.String()), "in.tsv", pairio.Options{})), shard.Spec{}, w)
		require.NoError(t, err)
		assert.Equal(t, n, got)
		p.end("score: end")
		assert.Contains(t, buf.String(), "\nscore: 1500/3000 pairs (50%), 300 pairs/s, eta 5s\n",
			"the 5 s line shows the half of the chunk the engine has scored")
	})
}

func TestCountPairs(t *testing.T) {
	dir := t.TempDir()
	tsv := writeTemp(t, dir, "in.tsv", "query\tpassage\nq1\ta\nq1\tb\nbad line\nq2\tc\n\n")
	jsonl := writeTemp(t, dir, "in.jsonl", `{"qid": "1", "query": "q1", "passages": ["a", "b"]}
{"qid": "2", "query": "q2", "candidates": [{"docid": "d", "text": "c"}]}
not json
`)
	ctx := context.Background()
	n, err := countPairs(ctx, tsv, pairio.FormatTSV, pairio.Options{}, shard.Spec{})
	require.NoError(t, err)
	assert.Equal(t, 3, n, "TSV: header, malformed and blank lines are not pairs")
	n, err = countPairs(ctx, jsonl, pairio.FormatJSONL, pairio.Options{}, shard.Spec{})
	require.NoError(t, err)
	assert.Equal(t, 3, n, "JSONL: every passage and candidate, the malformed line skipped")
	sum := 0
	for i := range 3 {
		spec, err := shard.ParseSpec(strings.Join([]string{string(rune('0' + i)), "3"}, "/"))
		require.NoError(t, err)
		k, err := countPairs(ctx, jsonl, pairio.FormatJSONL, pairio.Options{}, spec)
		require.NoError(t, err)
		sum += k
	}
	assert.Equal(t, 3, sum, "shards count their own pairs")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = countPairs(cctx, jsonl, pairio.FormatJSONL, pairio.Options{}, shard.Spec{})
	assert.ErrorIs(t, err, context.Canceled)
}

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}
