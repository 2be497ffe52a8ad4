package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// runCLI runs a gomps app made of fresh eval and version commands with args
// and returns what it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runApp(t, []*cli.Command{newEvalCommand(), newVersionCommand()}, args...)
	return out, err
}

// evalSharedDir returns ../shared/data/trec-dl, or skips (fails under CI=true).
func evalSharedDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "data", "trec-dl"))
	if _, err := os.Stat(filepath.Join(dir, "candidates.tsv")); err != nil {
		if os.Getenv("CI") == "true" && os.Getenv("GOMPS_SHARED_OPTIONAL") != "1" {
			t.Fatalf("shared data missing under CI=true: %v", err)
		}
		t.Skipf("shared data not found: %v", err)
	}
	return dir
}

// writeCandidateRun writes the (set, retriever) rows of candidates.tsv as a
// 6-column TREC run and returns its path.
func writeCandidateRun(t *testing.T, dir, set, retriever string) string {
	t.Helper()
	in, err := os.Open(filepath.Join(dir, "candidates.tsv"))
	require.NoError(t, err)
	defer in.Close()
	path := filepath.Join(t.TempDir(), set+"."+retriever+".run")
	var b strings.Builder
	sc := bufio.NewScanner(in)
	sc.Scan()
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if c[0] == set && c[1] == retriever {
			fmt.Fprintf(&b, "%s Q0 %s %s %s %s\n", c[2], c[3], c[4], c[5], retriever)
		}
	}
	require.NoError(t, sc.Err())
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func TestEvalPublishedFigures(t *testing.T) {
	dir := evalSharedDir(t)
	for _, tc := range []struct{ set, retriever, qrels, want string }{
		{"dl19", "bm25", "qrels.dl19-passage.txt", "0.5058"},
		{"dl21", "bm25", "qrels.dl21-passage.txt", "0.4458"},
		{"dl19", "splade-pp-ed", "qrels.dl19-passage.txt", "0.7308"},
	} {
		t.Run("set="+tc.set+"/run="+tc.retriever, func(t *testing.T) {
			run := writeCandidateRun(t, dir, tc.set, tc.retriever)
			out, err := runCLI(t, "eval", "--run", run, "--qrels", filepath.Join(dir, tc.qrels))
			require.NoError(t, err)
			assert.Regexp(t, `(?m)^ndcg_cut_10\s+\tall\t`+tc.want+`$`, out)
			assert.Regexp(t, `(?m)^recip_rank_10\s+\tall\t0\.\d{4}\trel>=1$`, out)
			assert.Regexp(t, `(?m)^recall_100\s+\tall\t0\.\d{4}\trel>=1$`, out)
			assert.Regexp(t, `(?m)^map\s+\tall\t0\.\d{4}\trel>=1$`, out)
		})
	}
}

func TestEvalFlagsAndErrors(t *testing.T) {
	tmp := t.TempDir()
	qrels := filepath.Join(tmp, "qrels")
	require.NoError(t, os.WriteFile(qrels, []byte("1 0 a 1\n1 0 b 2\n2 Q0 c 1\n"), 0o644))
	run := filepath.Join(tmp, "run")
	require.NoError(t, os.WriteFile(run, []byte("1 Q0 a 1 1.0 t\n1 Q0 b 2 2.0 t\n2 Q0 x 1 9 t\n2 Q0 c 2 1 t\n"), 0o644))

	out, err := runCLI(t, "eval", "--run", run, "--qrels", qrels, "--metric", "recip_rank,P_1", "--json", "-q")
	require.NoError(t, err)
	var got struct {
		NumQ     int                           `json:"num_q"`
		Metrics  map[string]float64            `json:"metrics"`
		PerQuery map[string]map[string]float64 `json:"per_query"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, 2, got.NumQ)
	assert.InDelta(t, 0.75, got.Metrics["recip_rank"], 1e-12, "mean of 1 and 1/2")
	assert.InDelta(t, 0.5, got.PerQuery["2"]["recip_rank"], 1e-12)
	assert.InDelta(t, 0.5, got.Metrics["P_1"], 1e-12)

	// --rel-threshold 2: only b counts; it ranks first for qid 1, qid 2 has none.
	out, err = runCLI(t, "eval", "--run", run, "--qrels", qrels, "--metric", "recip_rank", "--rel-threshold", "2")
	require.NoError(t, err)
	assert.Contains(t, out, "recip_rank            \tall\t0.5000")

	t.Setenv("GOMPS_RUN", run)
	t.Setenv("GOMPS_QRELS", qrels)
	t.Setenv("GOMPS_METRIC", "P_2")
	out, err = runCLI(t, "eval")
	require.NoError(t, err, "flags come from GOMPS_* env vars")
	assert.Contains(t, out, "P_2                   \tall\t0.7500")

	// --run - reads standard input.
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	go func() {
		pw.WriteString("1 Q0 b 1 2.0 t\n")
		pw.Close()
	}()
	stdin := os.Stdin
	os.Stdin = pr
	out, err = runCLI(t, "eval", "--run", "-", "--qrels", qrels, "--metric", "recip_rank")
	os.Stdin = stdin
	pr.Close()
	require.NoError(t, err)
	assert.Contains(t, out, "num_q                 \tall\t1\n")
	assert.Contains(t, out, "recip_rank            \tall\t1.0000")

	bad := filepath.Join(tmp, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("1 Q0 a 1 1.0 t\n1 Q0 b 2 x t\n"), 0o644))
	_, err = runCLI(t, "eval", "--run", bad, "--qrels", qrels)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad+":2")
	assert.NotContains(t, err.Error(), "\n", "one-line cause")

	_, err = runCLI(t, "eval", "--run", run, "--qrels", qrels, "--metric", "mapp")
	assert.ErrorContains(t, err, "unknown metric")
	_, err = runCLI(t, "eval", "--run", run, "--qrels", qrels, "--rel-threshold", "0")
	assert.ErrorContains(t, err, "rel-threshold")
}

// runEval runs a fresh eval command and returns stdout and stderr.
func runEval(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runApp(t, []*cli.Command{newEvalCommand()}, append([]string{"eval"}, args...)...)
}

func TestEvalMAPAndRelevanceLevels(t *testing.T) {
	run, qrels := filepath.Join("..", "..", "examples", "first-stage.run"), filepath.Join("..", "..", "examples", "qrels.txt")
	// The figures of gomps/trec/testdata/pytrec_eval.json (case "examples").
	out, stderr, err := runEval(t, "--run", run, "--qrels", qrels)
	require.NoError(t, err)
	assert.Equal(t, "num_q                 \tall\t3\n"+
		"ndcg_cut_10           \tall\t0.5913\n"+
		"recip_rank_10         \tall\t0.4444\trel>=1\n"+
		"recall_100            \tall\t1.0000\trel>=1\n"+
		"map                   \tall\t0.5648\trel>=1\n", out, "MAP by default; each binary measure with its level")
	assert.Equal(t, "eval: note: the qrels are graded 0-3, as TREC DL's are; TREC DL reports its binary measures at relevance level 2 "+
		"(trec_eval -l 2, as Pyserini's DL evaluations do). recip_rank_10, recall_100, map here count grade >= 1 as relevant; "+
		"add --rel-threshold 2 to compare with figures at level 2\n", stderr)

	out, stderr, err = runEval(t, "--run", run, "--qrels", qrels, "-l", "2", "--metric", "map,map_cut_2,ndcg_cut_10")
	require.NoError(t, err, "-l as in trec_eval")
	assert.Equal(t, "num_q                 \tall\t3\n"+
		"map                   \tall\t0.3889\trel>=2\n"+
		"map_cut_2             \tall\t0.0000\trel>=2\n"+
		"ndcg_cut_10           \tall\t0.5913\n", out)
	assert.Contains(t, stderr, "map, map_cut_2 here count grade >= 2 as relevant\n", "the level is stated, no advice to change it")

	out, stderr, err = runEval(t, "--run", run, "--qrels", qrels, "--json", "--metric", "ndcg_cut_10,map")
	require.NoError(t, err)
	assert.Empty(t, stderr, "the note is in the JSON")
	var got struct {
		RelThreshold  int      `json:"rel_threshold"`
		BinaryMetrics []string `json:"binary_metrics"`
		Notes         []string `json:"notes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, 1, got.RelThreshold)
	assert.Equal(t, []string{"map"}, got.BinaryMetrics)
	require.Len(t, got.Notes, 1)
	assert.Contains(t, got.Notes[0], "TREC DL reports its binary measures at relevance level 2")

	// Binary qrels (0/1): no note; nDCG alone: no note.
	binary := filepath.Join(t.TempDir(), "qrels")
	require.NoError(t, os.WriteFile(binary, []byte("1 0 d11 1\n1 0 d14 0\n"), 0o644))
	_, stderr, err = runEval(t, "--run", run, "--qrels", binary)
	require.NoError(t, err)
	assert.Empty(t, stderr)
	_, stderr, err = runEval(t, "--run", run, "--qrels", qrels, "--metric", "ndcg_cut_10")
	require.NoError(t, err)
	assert.Empty(t, stderr)
}

func TestEvalRequiresFlags(t *testing.T) {
	t.Setenv("GOMPS_RUN", "")
	t.Setenv("GOMPS_QRELS", "")
	_, err := runCLI(t, "eval")
	assert.ErrorContains(t, err, "--run is empty")
	require.NoError(t, os.Unsetenv("GOMPS_RUN"))
	require.NoError(t, os.Unsetenv("GOMPS_QRELS"))
	_, err = runCLI(t, "eval")
	assert.ErrorContains(t, err, `Required flags "run, qrels" not set`)
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^gomps \S+\ncommit  \S+.*\ngo      go1\.\d+.*\nos/arch \w+/\w+\nbackend \w+ .*\n$`, out)

	version, commit = "v9.8.7", "abc123"
	t.Cleanup(func() { version, commit = "", "" })
	out, err = runCLI(t, "version", "--json")
	require.NoError(t, err)
	var v buildVersion
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "v9.8.7", v.Version, "-ldflags value wins")
	assert.Equal(t, "abc123", v.Commit)
	assert.NotEmpty(t, v.Go)
	assert.NotEmpty(t, v.OS)
}

// TestEvalVersionFlagsDocumented checks every flag has a usage text and a
// GOMPS_* env var.
func TestEvalVersionFlagsDocumented(t *testing.T) {
	for _, c := range []*cli.Command{newEvalCommand(), newVersionCommand()} {
		assert.NotEmpty(t, c.Usage, c.Name)
		for _, f := range c.Flags {
			df, ok := f.(cli.DocGenerationFlag)
			require.True(t, ok)
			name := f.Names()[0]
			assert.NotEmpty(t, df.GetUsage(), "%s --%s has a usage", c.Name, name)
			envs := df.GetEnvVars()
			require.NotEmpty(t, envs, "%s --%s has an env var", c.Name, name)
			assert.True(t, strings.HasPrefix(envs[0], "GOMPS_"), "%s --%s env %s", c.Name, name, envs[0])
		}
	}
	out, err := runCLI(t, "eval", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "$GOMPS_REL_THRESHOLD")
}
