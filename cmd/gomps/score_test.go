//go:build cgo

package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/weights"
)

// runScoreCLI runs a gomps app with a fresh score command.
func runScoreCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runApp(t, []*cli.Command{newScoreCommand()}, append([]string{"score"}, args...)...)
}

// tinyModel converts gomps/testdata/tiny to a native file in t.TempDir().
func tinyModel(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.gomps")
	_, err := weights.Convert(filepath.Join("..", "..", "gomps", "testdata", "tiny"), p, weights.ConvertOptions{Name: "gomps-test/tiny"})
	require.NoError(t, err)
	return p
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// rows splits TSV output into its fields per line.
func rows(out string) [][]string {
	var r [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line != "" {
			r = append(r, strings.Split(line, "\t"))
		}
	}
	return r
}

// libraryScores scores pairs with the library directly, the reference for
// the CLI's output.
func libraryScores(t *testing.T, model string, pairs [][2]string, opts ...gomps.Option) []float32 {
	t.Helper()
	r, err := gomps.Open(context.Background(), model, opts...)
	require.NoError(t, err)
	defer r.Close()
	ps := make([]gomps.Pair, len(pairs))
	for i, p := range pairs {
		ps[i] = gomps.Pair{Query: p[0], Passage: p[1]}
	}
	res, err := r.Do(context.Background(), gomps.Request{Pairs: ps})
	require.NoError(t, err)
	return res.Scores
}

func TestScoreBerlinExample(t *testing.T) {
	model := tinyModel(t)
	input := filepath.Join("..", "..", "examples", "berlin.tsv")
	raw, err := os.ReadFile(input)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Equal(t, "query\tpassage", lines[0], "the example has the literal header")
	var pairs [][2]string
	for _, l := range lines[1:] {
		q, p, _ := strings.Cut(l, "\t")
		pairs = append(pairs, [2]string{q, p})
	}
	want := libraryScores(t, model, pairs)

	out, stderr, err := runScoreCLI(t, "--model", model, "--input", input)
	require.NoError(t, err)
	got := rows(out)
	require.Len(t, got, len(pairs), "one line per pair, header not echoed as data")
	for i, r := range got {
		require.Len(t, r, 3, "line %d: input columns + score", i+1)
		assert.Equal(t, pairs[i][0], r[0], "line %d query, input order", i+1)
		assert.Equal(t, pairs[i][1], r[1], "line %d passage, input order", i+1)
		assert.Equal(t, strconv.FormatFloat(float64(want[i]), 'g', -1, 32), r[2], "line %d: shortest round-trip float32", i+1)
	}
	assert.Contains(t, stderr, "score: 10 pairs", "progress summary on stderr")

	// --output: the same bytes, written atomically (no temporary file left).
	dir := t.TempDir()
	outPath := filepath.Join(dir, "scores.tsv")
	_, _, err = runScoreCLI(t, "--model", model, "--input", input, "--output", outPath, "--quiet")
	require.NoError(t, err)
	file, err := os.ReadFile(outPath)
	require.NoError(t, err)
	assert.Equal(t, out, string(file))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "only the output file remains")
}

func TestScoreTSVRules(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()

	// Without the literal header the first line is data; --header skips it.
	in := writeFile(t, dir, "plain.tsv", "q one\tp one\nq one\t\nq two\tp two\n")
	out, _, err := runScoreCLI(t, "--model", model, "--input", in, "-q")
	require.NoError(t, err)
	got := rows(out)
	require.Len(t, got, 3)
	assert.Equal(t, []string{"q one", "p one"}, got[0][:2])
	assert.Equal(t, []string{"q one", ""}, got[1][:2], "an empty passage is valid and scored")
	want := libraryScores(t, model, [][2]string{{"q one", "p one"}, {"q one", ""}, {"q two", "p two"}})
	for i := range got {
		assert.Equal(t, strconv.FormatFloat(float64(want[i]), 'g', -1, 32), got[i][2], "line %d", i+1)
	}
	out, _, err = runScoreCLI(t, "--model", model, "--input", in, "--header", "-q")
	require.NoError(t, err)
	got = rows(out)
	require.Len(t, got, 3, "--header skips the first input line and writes a header row")
	assert.Equal(t, []string{"query", "passage", "score"}, got[0])
	assert.Equal(t, []string{"q one", ""}, got[1][:2])

	// A malformed line is an error naming file:line, and no output is written.
	bad := writeFile(t, dir, "bad.tsv", "query\tpassage\nq\tp\nq\tp\textra\n")
	outPath := filepath.Join(dir, "out.tsv")
	require.NoError(t, os.WriteFile(outPath, []byte("old\n"), 0o644))
	_, _, err = runScoreCLI(t, "--model", model, "--input", bad, "--output", outPath, "-q")
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad+":3")
	old, rerr := os.ReadFile(outPath)
	require.NoError(t, rerr)
	assert.Equal(t, "old\n", string(old), "the output keeps its old content")
	_, _, err = runScoreCLI(t, "--model", model, "--input", writeFile(t, dir, "noq.tsv", "\tp\n"), "-q")
	assert.ErrorContains(t, err, "noq.tsv:1")

	// Truncation off: the too-long pair is named by file:line.
	long := writeFile(t, dir, "long.tsv", "q\tshort\nq\t"+strings.Repeat("word ", 50)+"\n")
	_, _, err = runScoreCLI(t, "--model", model, "--input", long, "--max-length", "16", "--truncate=false", "-q")
	require.ErrorIs(t, err, gomps.ErrTooLong)
	assert.Contains(t, err.Error(), "long.tsv:2")
	out, _, err = runScoreCLI(t, "--model", model, "--input", long, "--max-length", "16", "-q")
	require.NoError(t, err, "truncation is on by default")
	assert.Len(t, rows(out), 2)
}

func TestScoreRankAndSigmoid(t *testing.T) {
	model := tinyModel(t)
	input := filepath.Join("..", "..", "examples", "berlin.tsv")
	out, _, err := runScoreCLI(t, "--model", model, "--input", input, "-q")
	require.NoError(t, err)
	raw := rows(out)

	out, _, err = runScoreCLI(t, "--model", model, "--input", input, "--rank", "-q")
	require.NoError(t, err)
	ranked := rows(out)
	require.Len(t, ranked, len(raw))
	for i := 1; i < len(ranked); i++ {
		a, _ := strconv.ParseFloat(ranked[i-1][2], 32)
		b, _ := strconv.ParseFloat(ranked[i][2], 32)
		assert.GreaterOrEqual(t, a, b, "ranked best first")
	}

	out, _, err = runScoreCLI(t, "--model", model, "--input", input, "--top-k", "3", "--sigmoid", "-q")
	require.NoError(t, err)
	top := rows(out)
	require.Len(t, top, 3, "--top-k keeps k per query")
	for i, r := range top {
		s, err := strconv.ParseFloat(r[2], 64)
		require.NoError(t, err)
		l, _ := strconv.ParseFloat(ranked[i][2], 64)
		assert.Equal(t, ranked[i][1], r[1], "top-k follows the ranking")
		assert.InDelta(t, 1/(1+math.Exp(-l)), s, 1e-6, "sigmoid of the logit")
	}
}

func TestScoreEnvAndDefaultModel(t *testing.T) {
	model := tinyModel(t)
	input, err := filepath.Abs(filepath.Join("..", "..", "examples", "berlin.tsv"))
	require.NoError(t, err)
	t.Setenv("GOMPS_INPUT", input)
	t.Setenv("GOMPS_MODEL", model)
	t.Setenv("GOMPS_TOP_K", "2")
	out, _, err := runScoreCLI(t, "-q")
	require.NoError(t, err, "flags from GOMPS_* variables")
	assert.Len(t, rows(out), 2)

	// No model anywhere: a clear error naming the set-up command.
	t.Setenv("GOMPS_MODEL", "")
	t.Setenv("GOMPS_TOP_K", "")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	cache := t.TempDir()
	t.Setenv("GOMPS_CACHE", cache)
	_, _, err = runScoreCLI(t, "-q")
	require.ErrorIs(t, err, gomps.ErrNoModel)
	assert.Contains(t, err.Error(), "tools/setup.sh")

	// The installed test model is the fallback, with a notice on stderr.
	test := filepath.Join(cache, "models", gomps.TestModelFile)
	require.NoError(t, os.MkdirAll(filepath.Dir(test), 0o755))
	raw, err := os.ReadFile(model)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(test, raw, 0o644))
	out, stderr, err := runScoreCLI(t)
	require.NoError(t, err)
	assert.Len(t, rows(out), 10)
	assert.Contains(t, stderr, "TEST model")
	assert.Contains(t, stderr, "not the real reranker")
}

func TestScoreFlagErrors(t *testing.T) {
	model := tinyModel(t)
	input := filepath.Join("..", "..", "examples", "berlin.tsv")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no-input", []string{"--model", model}, "input"},
		{"bad-format", []string{"--model", model, "--input", input, "--format", "xml"}, "unknown format"},
		{"unknown-ext", []string{"--model", model, "--input", writeFile(t, t.TempDir(), "pairs.xyz", "no tab, no JSON\n")}, "cannot tell the input format"},
		{"ambiguous", []string{"--model", model, "--input", writeFile(t, t.TempDir(), "pairs.xyz", "{\"query\":\t\"q\", \"passage\": \"p\"}\n")}, "--format tsv or --format jsonl"},
		{"queries-without-trec", []string{"--model", model, "--input", input, "--queries", "q.tsv"}, "go with TREC input"},
		{"missing-file", []string{"--model", model, "--input", "/nonexistent/x.tsv"}, "no such file"},
		{"bad-precision", []string{"--model", model, "--input", input, "--precision", "fp8"}, "precision"},
		{"negative-threads", []string{"--model", model, "--input", input, "--threads", "-1"}, "--threads -1"},
		{"no-model", []string{"--model", "/nonexistent/model.gomps", "--input", input}, "no model"},
		{"extra-arg", []string{"--model", model, "--input", input, "extra"}, "unexpected argument"},
	} {
		t.Run("case="+tc.name, func(t *testing.T) {
			_, _, err := runScoreCLI(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
