//go:build cgo

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
)

// trecFixture writes a run of two queries (with a header row), its queries
// file and its passages file (with extra passages the run does not name).
// Docids d2 and d3 have the same text, so their scores tie.
func trecFixture(t *testing.T, dir string) (run, queries, passages string) {
	t.Helper()
	run = writeFile(t, dir, "bm25.run", "qid\tQ0\tdocid\trank\tscore\ttag\n"+
		"q1 Q0 d1 1 9.5 bm25\nq1 Q0 d2 2 9.0 bm25\nq1 Q0 d3 3 8.0 bm25\nq1 Q0 d4 4 7.0 bm25\n"+
		"q2 Q0 d4 1 5.0 bm25\nq2 Q0 d5 2 4.0 bm25\n")
	queries = writeFile(t, dir, "queries.tsv", "qid\tquery\nq1\twhat is the capital of germany\nq2\thow do plants make food\nq9\tunused\n")
	passages = writeFile(t, dir, "passages.tsv", "docid\ttext\n"+
		"d0\tnot in the run\n"+
		"d1\tBerlin is the capital and largest city of Germany.\n"+
		"d2\tThe same text twice.\n"+
		"d3\tThe same text twice.\n"+
		"d4\tPhotosynthesis turns light, water and carbon dioxide into sugar.\n"+
		"d5\tMunich is in Bavaria.\n")
	return run, queries, passages
}

func TestScoreTRECInAndOut(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	run, queries, passages := trecFixture(t, dir)
	texts := map[string]string{
		"q1": "what is the capital of germany", "q2": "how do plants make food",
		"d1": "Berlin is the capital and largest city of Germany.", "d2": "The same text twice.",
		"d3": "The same text twice.", "d4": "Photosynthesis turns light, water and carbon dioxide into sugar.",
		"d5": "Munich is in Bavaria.",
	}
	runPairs := [][2]string{{"q1", "d1"}, {"q1", "d2"}, {"q1", "d3"}, {"q1", "d4"}, {"q2", "d4"}, {"q2", "d5"}}
	var pairs [][2]string
	for _, p := range runPairs {
		pairs = append(pairs, [2]string{texts[p[0]], texts[p[1]]})
	}
	scores := libraryScores(t, model, pairs)
	want := map[[2]string]float32{}
	for i, p := range runPairs {
		want[p] = scores[i]
	}
	require.Equal(t, want[[2]string{"q1", "d2"}], want[[2]string{"q1", "d3"}], "same text, same score: a tie")

	// The .run extension means TREC; TREC output is the default for TREC input.
	outPath := filepath.Join(dir, "reranked.run")
	_, _, err := runScoreCLI(t, "--model", model, "--input", run, "--queries", queries, "--passages", passages, "--output", outPath, "-q")
	require.NoError(t, err)
	raw, err := os.ReadFile(outPath)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Len(t, lines, len(runPairs), "one run line per candidate:\n%s", raw)

	type entry struct {
		qid, docid string
		rank       int
		score      float64
	}
	var got []entry
	for i, l := range lines {
		f := strings.Fields(l)
		require.Len(t, f, 6, "line %d: %q", i+1, l)
		assert.Equal(t, "Q0", f[1])
		assert.Equal(t, "gomps", f[5], "run tag")
		rank, err := strconv.Atoi(f[3])
		require.NoError(t, err)
		s, err := strconv.ParseFloat(f[4], 64)
		require.NoError(t, err)
		assert.InDelta(t, float64(want[[2]string{f[0], f[2]}]), s, 1e-6, "score of %s %s", f[0], f[2])
		got = append(got, entry{f[0], f[2], rank, s})
	}
	// Reranked per query: ranks 1..n, scores descending, ties by docid descending.
	rank := map[string]int{}
	for i, e := range got {
		rank[e.qid]++
		assert.Equal(t, rank[e.qid], e.rank, "line %d: ranks count from 1 within %s", i+1, e.qid)
		if i > 0 && got[i-1].qid == e.qid {
			assert.GreaterOrEqual(t, got[i-1].score, e.score, "line %d: score descending", i+1)
		}
	}
	assert.Equal(t, 4, rank["q1"])
	assert.Equal(t, 2, rank["q2"])
	pos := map[string]int{}
	for i, e := range got {
		if e.qid == "q1" {
			pos[e.docid] = i
		}
	}
	assert.Less(t, pos["d3"], pos["d2"], "a tie is broken by docid descending, as trec_eval does")
	assert.Equal(t, pos["d3"]+1, pos["d2"], "the tied pair is adjacent")

	// TREC in, TSV out: ids and texts with the score, in run order.
	out, _, err := runScoreCLI(t, "--model", model, "--format", "trec", "--input", run, "--queries", queries, "--passages", passages, "--output-format", "tsv", "-q")
	require.NoError(t, err)
	tsv := rows(out)
	require.Len(t, tsv, len(runPairs))
	for i, r := range tsv {
		require.Len(t, r, 5, "line %d: qid, docid, query, passage, score", i+1)
		assert.Equal(t, runPairs[i][:], r[:2], "line %d ids", i+1)
		assert.Equal(t, pairs[i][0], r[2], "line %d query", i+1)
		assert.Equal(t, pairs[i][1], r[3], "line %d passage", i+1)
		assert.Equal(t, strconv.FormatFloat(float64(scores[i]), 'g', -1, 32), r[4], "line %d score", i+1)
	}

	// --top-k cuts each query of the run.
	out, _, err = runScoreCLI(t, "--model", model, "--input", run, "--queries", queries, "--passages", passages, "--top-k", "1", "-q")
	require.NoError(t, err)
	top := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, top, 2, "one line per query")
	assert.Equal(t, strings.Join(strings.Fields(lines[0]), " "), strings.Join(strings.Fields(top[0]), " "))

	// Missing companion files and a missing passage are clear errors.
	_, _, err = runScoreCLI(t, "--model", model, "--input", run, "-q")
	assert.ErrorContains(t, err, "--queries")
	_, _, err = runScoreCLI(t, "--model", model, "--input", writeFile(t, dir, "p.tsv", "q\tp\n"), "--queries", queries, "-q")
	assert.ErrorContains(t, err, "TREC input")
	short := writeFile(t, dir, "short.tsv", "d1\tonly one passage\n")
	_, _, err = runScoreCLI(t, "--model", model, "--input", run, "--queries", queries, "--passages", short, "-q")
	require.Error(t, err)
	assert.Contains(t, err.Error(), run+":3", "the run line whose passage is missing")
	// TSV input has no ids: TREC output names the problem.
	_, _, err = runScoreCLI(t, "--model", model, "--input", writeFile(t, dir, "x.tsv", "q\tp\n"), "--output-format", "trec", "-q")
	assert.ErrorContains(t, err, "qid")
}

func TestScoreSkipBad(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	in := writeFile(t, dir, "mixed.tsv", "q\tgood one\nonly one field\nq\tgood two\n\tno query\nq\tgood three\n")
	_, _, err := runScoreCLI(t, "--model", model, "--input", in, "-q")
	require.Error(t, err, "fatal by default")
	assert.Contains(t, err.Error(), in+":2")

	out, stderr, err := runScoreCLI(t, "--model", model, "--input", in, "--skip-bad")
	require.NoError(t, err)
	got := rows(out)
	require.Len(t, got, 3)
	for i, r := range got {
		assert.Equal(t, []string{"q", []string{"good one", "good two", "good three"}[i]}, r[:2])
	}
	assert.Contains(t, stderr, "score: skipped 2 malformed lines")
	assert.Contains(t, stderr, in+":2", "each skipped line is named")
	assert.Contains(t, stderr, in+":4")

	// --quiet drops the per-line notices but keeps the count.
	_, stderr, err = runScoreCLI(t, "--model", model, "--input", in, "--skip-bad", "-q")
	require.NoError(t, err)
	assert.Equal(t, "score: skipped 2 malformed lines\n", stderr)

	// TREC: a run entry whose passage is missing is skipped and counted.
	run, queries, _ := trecFixture(t, dir)
	short := writeFile(t, dir, "short.tsv", "d1\tBerlin.\nd4\tPlants.\nbad line without a tab\n")
	out, stderr, err = runScoreCLI(t, "--model", model, "--input", run, "--queries", queries, "--passages", short, "--skip-bad", "-q")
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"), 3, "q1 d1, q1 d4, q2 d4")
	assert.Contains(t, stderr, "skipped 4 malformed lines", "one bad passages line and 3 run entries without a passage")
}

// sortedLines returns the non-empty lines of s, sorted.
func sortedLines(s string) []string {
	var l []string
	for _, x := range strings.Split(s, "\n") {
		if x != "" {
			l = append(l, x)
		}
	}
	sort.Strings(l)
	return l
}

// assertSameScores checks that two sorted score listings hold the same lines
// (query, passage) with scores equal within 1e-5: a pair's logit moves by up
// to ~2e-6 with the batch it was scored in (batch shape changes the matmul
// blocking), and sharding, like several instances, forms other batches.
func assertSameScores(t *testing.T, want, got []string, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		wi, gi := strings.LastIndexByte(want[i], '\t'), strings.LastIndexByte(got[i], '\t')
		require.Positive(t, wi, "%s: %q has no score", msg, want[i])
		require.Positive(t, gi, "%s: %q has no score", msg, got[i])
		require.Equal(t, want[i][:wi], got[i][:gi], msg)
		ws, err := strconv.ParseFloat(want[i][wi+1:], 64)
		require.NoError(t, err)
		gs, err := strconv.ParseFloat(got[i][gi+1:], 64)
		require.NoError(t, err)
		assert.InDelta(t, ws, gs, 1e-5, "%s: %s", msg, want[i][:wi])
	}
}

func TestScoreShardsUnion(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	// TSV without ids: 24 queries of 3 passages, sharded by query text.
	var b strings.Builder
	for q := 0; q < 24; q++ {
		for p := 0; p < 3; p++ {
			fmt.Fprintf(&b, "query number %d\tpassage %d about topic %d\n", q, p, q*7+p)
		}
	}
	in := writeFile(t, dir, "many.tsv", b.String())
	all, _, err := runScoreCLI(t, "--model", model, "--input", in, "--rank", "-q")
	require.NoError(t, err)
	require.Len(t, sortedLines(all), 72)

	const n = 3
	var union []string
	for i := 0; i < n; i++ {
		out, _, err := runScoreCLI(t, "--model", model, "--input", in, "--rank", "--shard", fmt.Sprintf("%d/%d", i, n), "-q")
		require.NoError(t, err)
		lines := sortedLines(out)
		assert.NotEmpty(t, lines, "shard %d/%d has queries", i, n)
		assert.Less(t, len(lines), 72, "shard %d/%d is a part", i, n)
		for _, l := range lines {
			q := strings.Split(l, "\t")[0]
			assert.Equal(t, i, shard.Of(q, n), "%q is in its shard by query text", q)
		}
		union = append(union, lines...)
	}
	sort.Strings(union)
	assertSameScores(t, sortedLines(all), union, "the shards together are the unsharded output")

	// TREC input is sharded by qid.
	run, queries, passages := trecFixture(t, dir)
	allRun, _, err := runScoreCLI(t, "--model", model, "--input", run, "--queries", queries, "--passages", passages, "-q")
	require.NoError(t, err)
	union = nil
	for i := 0; i < 2; i++ {
		out, _, err := runScoreCLI(t, "--model", model, "--input", run, "--queries", queries, "--passages", passages, "--shard", fmt.Sprintf("%d/2", i), "-q")
		require.NoError(t, err)
		for _, l := range sortedLines(out) {
			assert.Equal(t, i, shard.Of(strings.Fields(l)[0], 2), "%q is in its shard by qid", l)
			union = append(union, l)
		}
	}
	sort.Strings(union)
	assert.Equal(t, sortedLines(allRun), union)

	for _, bad := range []string{"3/3", "1", "-1/2", "a/b"} {
		_, _, err := runScoreCLI(t, "--model", model, "--input", in, "--shard", bad, "-q")
		require.ErrorIs(t, err, shard.ErrSpec, "--shard %s", bad)
	}
}

func TestScoreProgressBar(t *testing.T) {
	assert.Equal(t, "score: 10 pairs, 5 pairs/s", barLine(10, 0, 5), "no total: the count")
	line := barLine(50, 200, 10)
	assert.Contains(t, line, "["+strings.Repeat("=", 7)+strings.Repeat(" ", 23)+"]", "a quarter of 30 cells")
	assert.Contains(t, line, " 25% 50/200 pairs")
	assert.Contains(t, line, "eta 15s")
	// Not a terminal (a pipe, a file, /dev/null): no bar.
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, termWriter(f), "/dev/null is a character device, not a terminal")
	_, stderr, err := runScoreCLI(t, "--model", tinyModel(t), "--input", filepath.Join("..", "..", "examples", "berlin.tsv"))
	require.NoError(t, err)
	assert.NotContains(t, stderr, "\r", "no bar redraws when stderr is not a terminal")
	assert.Regexp(t, `(?m)^score: scoring .*berlin.tsv with model gomps-test/tiny on cpu \S+ f32, \d+ threads\n`, stderr, "a line at the start")
	assert.Regexp(t, `(?m)^score: 10 pairs in [0-9.]+s \(\d+ pairs/s\), model gomps-test/tiny on cpu`, stderr, "a line at the end")
}

// TestScoreChildProcess runs `gomps score` in a child process for
// TestScoreKilledMidWrite; it does nothing in a normal test run.
func TestScoreChildProcess(t *testing.T) {
	args := os.Getenv("GOMPS_TEST_SCORE_ARGS")
	if args == "" {
		t.Skip("only run as the child of TestScoreKilledMidWrite")
	}
	app := newApp()
	if err := run(app, append([]string{"gomps", "score"}, strings.Split(args, "\x1f")...)); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
	os.Exit(0)
}

func TestScoreKilledMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a large input")
	}
	model := tinyModel(t)
	dir := t.TempDir()
	// Enough pairs that scoring takes seconds, so the kill lands mid-run
	// after the first chunks are written to the temporary file.
	var b strings.Builder
	for i := 0; i < 400_000; i++ {
		fmt.Fprintf(&b, "query %d\tpassage text number %d for the kill test\n", i/10, i)
	}
	in := writeFile(t, dir, "big.tsv", b.String())
	outDir := t.TempDir()

	for _, tc := range []struct {
		name string
		old  *string
	}{{"existing-output", ptr("old content\n")}, {"no-output", nil}} {
		t.Run("case="+tc.name, func(t *testing.T) {
			out := filepath.Join(outDir, tc.name+".tsv")
			if tc.old != nil {
				require.NoError(t, os.WriteFile(out, []byte(*tc.old), 0o644))
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestScoreChildProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "GOMPS_TEST_SCORE_ARGS="+strings.Join([]string{"--model", model, "--input", in, "--output", out, "-q", "--threads", "1"}, "\x1f"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			// Wait until the temporary file holds scored lines, then SIGKILL.
			deadline := time.Now().Add(60 * time.Second)
			var tmp string
			for tmp == "" {
				select {
				case err := <-exited:
					t.Fatalf("the child finished before it could be killed (%v): make the input larger\n%s", err, stderr.String())
				default:
				}
				require.True(t, time.Now().Before(deadline), "no temporary output appeared")
				matches, _ := filepath.Glob(filepath.Join(outDir, "."+tc.name+".tsv.tmp-*"))
				for _, m := range matches {
					if st, err := os.Stat(m); err == nil && st.Size() > 0 {
						tmp = m
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			err := <-exited
			require.Error(t, err, "killed")
			if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
				assert.True(t, st.Signaled(), "ended by the signal: %v", err)
			}

			got, rerr := os.ReadFile(out)
			if tc.old == nil {
				assert.ErrorIs(t, rerr, os.ErrNotExist, "no output file after a kill")
			} else {
				require.NoError(t, rerr)
				assert.Equal(t, *tc.old, string(got), "the old output is intact")
			}
			partial, err := os.ReadFile(tmp)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(partial), "query 0\tpassage text number 0"), "the killed run was writing scores to the temporary file")
		})
	}
}

func ptr[T any](v T) *T { return &v }

// withStdin runs f with os.Stdin reading content.
func withStdin(t *testing.T, content string, f func()) {
	t.Helper()
	p := writeFile(t, t.TempDir(), "stdin", content)
	in, err := os.Open(p)
	require.NoError(t, err)
	defer in.Close()
	old := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = old }()
	f()
}

// splitScores cuts the last tab-separated field (the score) off each line
// and returns the lines without it and the scores.
func splitScores(t *testing.T, out string) (lines []string, scores []float64) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		k := strings.LastIndexByte(l, '\t')
		require.Positive(t, k, l)
		if l[k+1:] == "score" {
			lines = append(lines, l)
			continue
		}
		v, err := strconv.ParseFloat(l[k+1:], 64)
		require.NoError(t, err, l)
		lines, scores = append(lines, l[:k]), append(scores, v)
	}
	return lines, scores
}

func TestScoreFormats(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	want := libraryScores(t, model, [][2]string{{"q one", "p one"}, {"q one", "p two"}, {"q two", "p three"}})
	// A pair's logit moves by up to 1e-5 with the shape of its batch.
	sameScores := func(got []float64, msg string) {
		t.Helper()
		require.Len(t, got, len(want), msg)
		for i := range want {
			assert.InDelta(t, float64(want[i]), got[i], 1e-5, "%s: pair %d", msg, i)
		}
	}

	// One pair per line, qids and no docids: TSV output has a qid column and no docid column.
	onePair := `{"qid": "1", "query": "q one", "passage": "p one"}
{"qid": "1", "query": "q one", "passage": "p two"}
{"qid": "2", "query": "q two", "passage": "p three"}
`
	in := writeFile(t, dir, "pairs.jsonl", onePair)
	out, _, err := runScoreCLI(t, "--model", model, "--input", in, "--output-format", "tsv", "--header", "-q")
	require.NoError(t, err)
	lines, scores := splitScores(t, out)
	assert.Equal(t, []string{"qid\tquery\tpassage\tscore", "1\tq one\tp one", "1\tq one\tp two", "2\tq two\tp three"}, lines)
	sameScores(scores, "one pair per line")

	// The passages shape without ids: query, passage, score.
	in = writeFile(t, dir, "queries.jsonl", `{"query": "q one", "passages": ["p one", "p two"]}
{"query": "q two", "passages": ["p three"]}
`)
	out, _, err = runScoreCLI(t, "--model", model, "--input", in, "--output-format", "tsv", "-q")
	require.NoError(t, err)
	lines, scores = splitScores(t, out)
	assert.Equal(t, []string{"q one\tp one", "q one\tp two", "q two\tp three"}, lines, "no empty id columns")
	sameScores(scores, "passages shape")

	// Standard input is told by its content.
	withStdin(t, onePair, func() {
		out, _, err = runScoreCLI(t, "--model", model, "--input", "-", "-q")
	})
	require.NoError(t, err)
	back, err := readAllItems(pairio.NewJSONLReader(strings.NewReader(out), "out", pairio.Options{}))
	require.NoError(t, err, "JSONL on stdin gives JSONL out:\n%s", out)
	require.Len(t, back, 3)
	scores = nil
	for i, it := range back {
		assert.Equal(t, []string{[]string{"1", "1", "2"}[i], []string{"p one", "p two", "p three"}[i]}, []string{it.QID, it.Passage})
		scores = append(scores, it.InputScore)
	}
	sameScores(scores, "stdin JSONL")
	withStdin(t, "q one\tp one\nq one\tp two\nq two\tp three\n", func() {
		out, _, err = runScoreCLI(t, "--model", model, "--input", "-", "-q")
	})
	require.NoError(t, err)
	lines, scores = splitScores(t, out)
	assert.Equal(t, []string{"q one\tp one", "q one\tp two", "q two\tp three"}, lines, "TSV on stdin")
	sameScores(scores, "stdin TSV")
	withStdin(t, "{\"query\":\t\"q\", \"passage\": \"p\"}\n", func() {
		_, _, err = runScoreCLI(t, "--model", model, "--input", "-", "-q")
	})
	require.ErrorIs(t, err, pairio.ErrAmbiguousFormat)
	assert.ErrorContains(t, err, "<stdin>: its first line is a JSON object and also two tab-separated fields; name it with --format tsv or --format jsonl")
	withStdin(t, "{\"query\":\t\"q\", \"passage\": \"p\"}\n", func() {
		out, _, err = runScoreCLI(t, "--model", model, "--input", "-", "--format", "jsonl", "-q")
	})
	require.NoError(t, err, "--format settles it")
	assert.Contains(t, out, `"query":"q"`)
}

// TestScoreHelpExamplesParse reads every example line of score --help with
// the readers score uses.
func TestScoreHelpExamplesParse(t *testing.T) {
	stdout, _, err := runScoreCLI(t, "--help")
	require.NoError(t, err)
	var jsonl, tsv int
	for _, line := range strings.Split(stdout, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "{"):
			items, err := readAllItems(pairio.NewJSONLReader(strings.NewReader(line), "help", pairio.Options{}))
			require.NoError(t, err, line)
			assert.NotEmpty(t, items, line)
			jsonl++
		case strings.Contains(line, "<TAB>") && strings.HasSuffix(line, "."):
			items, err := readAllItems(pairio.NewTSVReader(strings.NewReader(strings.ReplaceAll(line, "<TAB>", "\t")), "help", pairio.Options{}))
			require.NoError(t, err, line)
			assert.Len(t, items, 1, line)
			tsv++
		}
	}
	assert.Equal(t, 4, jsonl, "three JSONL input shapes and the JSONL output")
	assert.Equal(t, 1, tsv)
}
