package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The pipeline runs on Prism, in this process (the default runner).
func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	os.Exit(m.Run())
}

// tinyModel is the tiny test model (a Hugging Face dir), required in CI.
func tinyModel(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../gomps/testdata/tiny")
	require.NoError(t, err)
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("beam: the tiny test model is missing under CI=true: %v", err)
			}
			t.Skipf("tiny test model not found (%v)", err)
		}
	}
	return dir
}

var words = strings.Fields(`the a flea cat dog life cycle how long is what does prenatal care include
	berlin capital germany population city river spree museum island wall history year
	cross encoder rerank passage query score model vector search engine index term`)

// synthetic writes nq queries of npass candidates each, deterministic
// pseudo-text, as JSONL with qids and docids (and the same pairs as TSV).
func synthetic(t *testing.T, dir string, nq, npass int) (jsonl, tsv string) {
	t.Helper()
	var jb, tb strings.Builder
	x := uint32(7)
	next := func() int { x = x*1664525 + 1013904223; return int(x >> 8) }
	text := func(n int) string {
		ws := make([]string, n)
		for i := range ws {
			ws[i] = words[next()%len(words)]
		}
		return strings.Join(ws, " ")
	}
	for q := range nq {
		query := text(3 + next()%5)
		fmt.Fprintf(&jb, `{"qid": "q%d", "query": %q, "candidates": [`, 1000+q*7, query)
		for p := range npass {
			passage := text(5 + next()%40)
			if p > 0 {
				jb.WriteString(", ")
			}
			fmt.Fprintf(&jb, `{"docid": "d%d", "text": %q}`, q*100+p, passage)
			fmt.Fprintf(&tb, "%s\t%s\n", query, passage)
		}
		jb.WriteString("]}\n")
	}
	jsonl, tsv = filepath.Join(dir, "pairs.jsonl"), filepath.Join(dir, "pairs.tsv")
	require.NoError(t, os.WriteFile(jsonl, []byte(jb.String()), 0o644))
	require.NoError(t, os.WriteFile(tsv, []byte(tb.String()), 0o644))
	return jsonl, tsv
}

// reference is what `gomps score --shard i/n` produces: the input read with
// pairio, query groups in input order, each kept when shard.KeepPair says
// so, scored with Reranker.Score and written with pairio's writer.
func reference(t *testing.T, r *gomps.Reranker, in string, format pairio.Format, outFormat pairio.Format, wo pairio.WriterOptions, spec shard.Spec, skipBad bool) (string, int) {
	t.Helper()
	rd, err := pairio.Open(in, format, pairio.Options{SkipBad: skipBad})
	require.NoError(t, err)
	defer rd.Close()
	return referenceFrom(t, r, rd, outFormat, wo, spec), rd.Skipped()
}

// referenceFrom is reference over an open reader.
func referenceFrom(t *testing.T, r *gomps.Reranker, rd pairio.Reader, outFormat pairio.Format, wo pairio.WriterOptions, spec shard.Spec) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := pairio.NewWriter(&buf, outFormat, wo)
	require.NoError(t, err)
	groups := pairio.Groups(rd)
	for {
		g, err := groups.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if !spec.KeepPair(g[0].QID, g[0].Query) {
			continue
		}
		passages := make([]string, len(g))
		for i := range g {
			passages[i] = g[i].Passage
		}
		scores, err := r.Score(context.Background(), g[0].Query, passages)
		require.NoError(t, err)
		sg := make([]pairio.Scored, len(g))
		for i := range g {
			sg[i] = pairio.Scored{Item: g[i], Score: float64(scores[i])}
		}
		require.NoError(t, w.WriteGroup(sg))
	}
	require.NoError(t, w.Flush())
	return buf.String()
}

// A TREC run with its queries and passages files: every worker reading a
// run file streams the passages file, keeping the docids the run names.
func TestTRECInput(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	run, queries, passages := filepath.Join(dir, "bm25.run"), filepath.Join(dir, "queries.tsv"), filepath.Join(dir, "passages.tsv")
	var rb, qb, pb strings.Builder
	qb.WriteString("qid\tquery\n")
	pb.WriteString("docid\ttext\n")
	for q := range 9 {
		fmt.Fprintf(&qb, "%d\t%s %s\n", 300+q, words[q], words[q+5])
		for k := range 4 {
			doc := (q*3 + k) % 20 // passages shared between queries
			fmt.Fprintf(&rb, "%d Q0 p%d %d %d.5 bm25\n", 300+q, doc, k+1, 10-k)
		}
	}
	for d := range 25 { // five passages no query names
		fmt.Fprintf(&pb, "p%d\t%s %s %s\n", d, words[d%len(words)], words[(d*7)%len(words)], words[(d*11)%len(words)])
	}
	for p, b := range map[string]string{run: rb.String(), queries: qb.String(), passages: pb.String()} {
		require.NoError(t, os.WriteFile(p, []byte(b), 0o644))
	}
	ref, err := gomps.Open(context.Background(), model)
	require.NoError(t, err)
	defer ref.Close()
	o := Options{Input: run, Queries: queries, Passages: passages, Output: filepath.Join(dir, "out", "reranked.run"),
		Shards: 2, Batch: 5, Tag: "gomps", Model: ModelConfig{Model: model}}
	sum, err := runPipeline(context.Background(), o)
	require.NoError(t, err)
	assert.EqualValues(t, 36, sum.PairsScored)
	for i := range o.Shards {
		rd, err := pairio.OpenTREC(run, queries, passages, pairio.Options{})
		require.NoError(t, err)
		want := referenceFrom(t, ref, rd, pairio.FormatTREC, pairio.WriterOptions{Tag: "gomps"}, shard.Spec{Index: i, Count: o.Shards})
		assertSameOutput(t, want, readShard(t, o, i), pairio.FormatTREC, fmt.Sprintf("shard %d", i))
	}
}

// scoreTol bounds |pipeline score - reference score|. The library's scores
// depend slightly on which pairs share a forward pass (padding to the
// batch's longest pair changes the oneDNN GEMM shapes and so the
// summation order); the pipeline batches pairs of several queries
// together, the reference one query at a time. Observed on the tiny model:
// up to 2.9e-6 absolute (logits of magnitude 0.1-3).
const scoreTol = 1e-5

var jsonScore = regexp.MustCompile(`"score":(-?[0-9][0-9.eE+-]*)`)

// splitScores replaces every score in out with "#" and returns the scores,
// so that two outputs can be compared exactly except for the scores.
func splitScores(t *testing.T, out string, format pairio.Format) (string, []float64) {
	t.Helper()
	var scores []float64
	parse := func(s string) string {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, "score %q", s)
		scores = append(scores, v)
		return "#"
	}
	lines := strings.SplitAfter(out, "\n")
	for i, l := range lines {
		body := strings.TrimSuffix(l, "\n")
		switch format {
		case pairio.FormatTSV:
			if k := strings.LastIndexByte(body, '\t'); k >= 0 {
				body = body[:k+1] + parse(body[k+1:])
			}
		case pairio.FormatTREC:
			if f := strings.Fields(body); len(f) == 6 {
				f[4] = parse(f[4])
				body = strings.Join(f, " ")
			}
		case pairio.FormatJSONL:
			body = jsonScore.ReplaceAllStringFunc(body, func(m string) string {
				return `"score":` + parse(strings.TrimPrefix(m, `"score":`))
			})
		}
		lines[i] = body + l[len(strings.TrimSuffix(l, "\n")):]
	}
	return strings.Join(lines, ""), scores
}

// assertSameOutput checks that got equals want except that scores may
// differ by scoreTol; it returns the largest difference seen.
func assertSameOutput(t *testing.T, want, got string, format pairio.Format, msg string) float64 {
	t.Helper()
	ws, wv := splitScores(t, want, format)
	gs, gv := splitScores(t, got, format)
	assert.Equal(t, ws, gs, "%s: the same lines, order and fields", msg)
	maxDiff := 0.0
	if assert.Len(t, gv, len(wv), "%s: the same number of scores", msg) {
		for i := range wv {
			maxDiff = max(maxDiff, math.Abs(wv[i]-gv[i]))
			assert.InDelta(t, wv[i], gv[i], scoreTol, "%s: score %d", msg, i)
		}
	}
	return maxDiff
}

func readShard(t *testing.T, o Options, i int) string {
	t.Helper()
	stem, ext := splitOutput(o.Output)
	b, err := os.ReadFile(shardName(stem, ext, i, o.Shards))
	require.NoError(t, err, "shard %d of %d is written", i, o.Shards)
	return string(b)
}

func TestPipelineEqualsScore(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	jsonl, tsv := synthetic(t, dir, 23, 9)
	ref, err := gomps.Open(context.Background(), model)
	require.NoError(t, err)
	defer ref.Close()

	cases := []struct {
		name      string
		in        string
		format    pairio.Format
		outFormat pairio.Format
		wo        pairio.WriterOptions
		shards    int
		batch     int
	}{
		{"in=jsonl/out=jsonl/shards=1", jsonl, pairio.FormatJSONL, pairio.FormatJSONL, pairio.WriterOptions{}, 1, 64},
		{"in=jsonl/out=jsonl/shards=4", jsonl, pairio.FormatJSONL, pairio.FormatJSONL, pairio.WriterOptions{}, 4, 16},
		{"in=jsonl/out=trec/shards=3/top-k=5", jsonl, pairio.FormatJSONL, pairio.FormatTREC, pairio.WriterOptions{TopK: 5, Tag: "gomps"}, 3, 7},
		{"in=tsv/out=tsv/shards=1", tsv, pairio.FormatTSV, pairio.FormatTSV, pairio.WriterOptions{}, 1, 64},
		{"in=tsv/out=tsv/shards=5/rank", tsv, pairio.FormatTSV, pairio.FormatTSV, pairio.WriterOptions{Rerank: true}, 5, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{
				Input: c.in, Format: string(c.format), OutputFormat: string(c.outFormat),
				Output: filepath.Join(dir, c.name, "scores."+string(c.outFormat)),
				Shards: c.shards, TopK: c.wo.TopK, Rerank: c.wo.Rerank, Batch: c.batch,
				Model: ModelConfig{Model: model},
			}
			sum, err := runPipeline(context.Background(), o)
			require.NoError(t, err)
			var union string
			nonEmpty := 0
			maxDiff := 0.0
			for i := range c.shards {
				spec := shard.Spec{Index: i, Count: c.shards}
				want, _ := reference(t, ref, c.in, c.format, c.outFormat, c.wo, spec, false)
				got := readShard(t, o, i)
				d := assertSameOutput(t, want, got, c.outFormat, fmt.Sprintf("shard %d of %d vs gomps score --shard %s", i, c.shards, spec))
				maxDiff = max(maxDiff, d)
				union += got
				if got != "" {
					nonEmpty++
				}
			}
			t.Logf("largest |score difference| %.3g", maxDiff)
			// The union of the shards is the unsharded output: the same
			// lines (scores within scoreTol), in some order.
			whole, _ := reference(t, ref, c.in, c.format, c.outFormat, c.wo, shard.Spec{}, false)
			wholeLines, unionLines := strings.SplitAfter(whole, "\n"), strings.SplitAfter(union, "\n")
			sort.Strings(wholeLines)
			sort.Strings(unionLines)
			assert.Len(t, unionLines, len(wholeLines), "the union of the shards has every line")
			ws, _ := splitScores(t, strings.Join(wholeLines, ""), c.outFormat)
			us, _ := splitScores(t, strings.Join(unionLines, ""), c.outFormat)
			wsl, usl := strings.Split(ws, "\n"), strings.Split(us, "\n")
			sort.Strings(wsl)
			sort.Strings(usl)
			assert.Equal(t, wsl, usl, "the union of the shards is the unsharded output")
			if c.shards > 1 {
				assert.Greater(t, nonEmpty, 1, "queries spread over several shards")
			}
			assert.EqualValues(t, 23*9, sum.PairsRead, "pairs read")
			assert.EqualValues(t, 23*9, sum.PairsScored, "pairs scored")
			assert.EqualValues(t, 23, sum.Queries, "queries scored")
		})
	}
}

func TestMalformedLine(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "bad.tsv")
	lines := "query\tpassage\nberlin\tcapital of germany\nberlin\tthe spree river\nno tab on this line\nflea\thow long is a flea life\n\xff\tinvalid utf8\nflea\tcats and dogs\n"
	require.NoError(t, os.WriteFile(in, []byte(lines), 0o644))
	o := Options{Input: in, Output: filepath.Join(dir, "out", "scores.tsv"), Shards: 2, Batch: 4, Model: ModelConfig{Model: model}}

	t.Run("default=fail", func(t *testing.T) {
		_, err := runPipeline(context.Background(), o)
		require.Error(t, err, "a malformed line fails the pipeline")
		assert.Contains(t, err.Error(), in+":4", "the error names file:line")
		for i := range o.Shards {
			stem, ext := splitOutput(o.Output)
			_, serr := os.Stat(shardName(stem, ext, i, o.Shards))
			assert.True(t, os.IsNotExist(serr), "no shard %d is written by a failed pipeline", i)
		}
	})
	t.Run("skip-bad=counted", func(t *testing.T) {
		o := o
		o.SkipBad = true
		sum, err := runPipeline(context.Background(), o)
		require.NoError(t, err)
		ref, err := gomps.Open(context.Background(), model)
		require.NoError(t, err)
		defer ref.Close()
		var skipped int
		var union string
		for i := range o.Shards {
			var want string
			want, skipped = reference(t, ref, in, pairio.FormatTSV, pairio.FormatTSV, pairio.WriterOptions{}, shard.Spec{Index: i, Count: o.Shards}, true)
			got := readShard(t, o, i)
			assertSameOutput(t, want, got, pairio.FormatTSV, fmt.Sprintf("shard %d", i))
			union += got
		}
		assert.Equal(t, 2, skipped, "the score command's reader skips two lines")
		assert.EqualValues(t, skipped, sum.BadLinesSkipped, "the pipeline counts the same skipped lines")
		assert.EqualValues(t, 4, sum.PairsScored, "every good pair is scored")
		assert.Equal(t, 4, strings.Count(union, "\n"), "every good pair is written")
	})
}

// One Reranker per worker process: however many DoFn instances and bundles
// the runner uses, the model is opened once.
func TestOneRerankerPerWorker(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	jsonl, _ := synthetic(t, dir, 17, 3)
	var opens atomic.Int32
	orig := openScorer
	openScorer = func(ctx context.Context, cfg ModelConfig) (scorer, error) {
		opens.Add(1)
		return orig(ctx, cfg)
	}
	defer func() { openScorer = orig }()
	// A configuration no other test uses, so the worker's cache is cold.
	mc := ModelConfig{Model: model, Threads: 1}
	for run := range 2 {
		o := Options{Input: jsonl, Output: filepath.Join(dir, fmt.Sprint(run), "s.jsonl"), Shards: 3, Batch: 2, Model: mc}
		sum, err := runPipeline(context.Background(), o)
		require.NoError(t, err)
		assert.EqualValues(t, 17*3, sum.PairsScored)
	}
	assert.EqualValues(t, 1, opens.Load(), "the model is opened once per worker process and configuration")
}

func TestOptionsCheck(t *testing.T) {
	base := Options{Input: "x.jsonl", Output: "o.jsonl", Shards: 1, Batch: 1, Model: ModelConfig{Model: "m"}}
	cases := []struct {
		name string
		edit func(*Options)
		msg  string
	}{
		{"no-input", func(o *Options) { o.Input = "" }, "--input is required"},
		{"no-output", func(o *Options) { o.Output = "" }, "--output is required"},
		{"no-model", func(o *Options) { o.Model.Model = "" }, "--model is required"},
		{"bad-ext", func(o *Options) { o.Input = "x.bin" }, "--format"},
		{"trec-no-files", func(o *Options) { o.Input = "x.run" }, "--queries"},
		{"tsv-to-trec", func(o *Options) { o.Input = "x.tsv"; o.OutputFormat = "trec" }, "needs qids and docids"},
		{"shards=0", func(o *Options) { o.Shards = 0 }, "--shards 0"},
		{"top-k<0", func(o *Options) { o.TopK = -1 }, "--top-k -1"},
	}
	for _, c := range cases {
		o := base
		c.edit(&o)
		err := o.check()
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.msg, c.name)
		assert.True(t, strings.HasPrefix(err.Error(), "beam: "), c.name)
	}
	o := base
	require.NoError(t, o.check())
	assert.Equal(t, "jsonl", o.Format, "format from the extension")
	assert.Equal(t, "jsonl", o.OutputFormat, "output format defaults to the input's")
	stem, ext := splitOutput("out/run.v1/scores.tsv")
	assert.Equal(t, "out/run.v1/scores-00002-of-00008.tsv", shardName(stem, ext, 2, 8))
	stem, ext = splitOutput("out/run.v1/scores")
	assert.Equal(t, "out/run.v1/scores-00000-of-00001", shardName(stem, ext, 0, 1))
}

// With truncation off, a too-long pair fails the pipeline naming its line.
func TestTooLongNamesLine(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "long.tsv")
	long := strings.Repeat("berlin wall history ", 20)
	require.NoError(t, os.WriteFile(in, []byte("flea\tcat\nberlin\tcity\nberlin\t"+long+"\nspree\triver\n"), 0o644))
	o := Options{Input: in, Output: filepath.Join(dir, "out", "s.tsv"), Shards: 1, Batch: 64,
		Model: ModelConfig{Model: model, MaxLength: 16, NoTruncate: true}}
	_, err := runPipeline(context.Background(), o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), in+":3: ", "the error names the pair's file:line")
	assert.Contains(t, err.Error(), "longer than the maximum length 16")
}

func TestEnvDefaults(t *testing.T) {
	fs := flag.NewFlagSet("beam", flag.ContinueOnError)
	shards := fs.Int("shards", 1, "")
	model := fs.String("model", "", "")
	skip := fs.Bool("skip-bad", false, "")
	t.Setenv("GOMPS_SHARDS", "4")
	t.Setenv("GOMPS_MODEL", "/models/m")
	t.Setenv("GOMPS_SKIP_BAD", "true")
	require.NoError(t, envDefaults(fs))
	require.NoError(t, fs.Parse([]string{"--model", "/cli/m"}))
	assert.Equal(t, 4, *shards, "GOMPS_SHARDS sets --shards")
	assert.True(t, *skip, "GOMPS_SKIP_BAD sets --skip-bad")
	assert.Equal(t, "/cli/m", *model, "the command line wins over GOMPS_MODEL")
	t.Setenv("GOMPS_SHARDS", "four")
	err := envDefaults(fs)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `beam: GOMPS_SHARDS="four"`)
}

// A model the worker cannot open fails the pipeline with the reason.
func TestBadModelFails(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "p.tsv")
	require.NoError(t, os.WriteFile(in, []byte("flea\tcat\n"), 0o644))
	o := Options{Input: in, Output: filepath.Join(dir, "out", "s.tsv"), Shards: 1, Batch: 4,
		Model: ModelConfig{Model: filepath.Join(dir, "no-such-model")}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := runPipeline(ctx, o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "beam: opening model")
	assert.Contains(t, err.Error(), "no-such-model")
}
