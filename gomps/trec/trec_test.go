package trec

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustRun(t *testing.T, s string) Run {
	t.Helper()
	r, err := ReadRun(strings.NewReader(s), "run")
	require.NoError(t, err)
	return r
}

func mustQrels(t *testing.T, s string) Qrels {
	t.Helper()
	q, err := ReadQrels(strings.NewReader(s), "qrels")
	require.NoError(t, err)
	return q
}

func TestReadQrels(t *testing.T) {
	q := mustQrels(t, "1 0 a 2\n1 Q0 b 0\r\n# comment\n\n2\t0\tc\t-1\n")
	assert.Equal(t, Qrels{"1": {"a": 2, "b": 0}, "2": {"c": -1}}, q)

	for name, in := range map[string]string{
		"fields=3":  "1 0 a\n",
		"fields=5":  "1 0 a 1 x\n",
		"rel=float": "1 0 a 1.5\n",
		"rel=big":   "1 0 a 300\n",
		"duplicate": "1 0 ok 2\n",
		"utf8":      "1 0 \xff 1\n",
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := ReadQrels(strings.NewReader("1 0 ok 1\n"+in), "q.txt")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "q.txt:2", "error names file:line")
		})
	}
}

func TestReadRun(t *testing.T) {
	r := mustRun(t, "qid Q0 docid rank score tag\n1 Q0 a 1 2.5 x\n1 Q0 b 2 1e0 x\n\n2 Q0 c 1 -3 x\n")
	require.Len(t, r["1"], 2)
	assert.Equal(t, Entry{QID: "1", DocID: "a", Rank: 1, Score: 2.5, Tag: "x", Line: 2}, r["1"][0])
	assert.Equal(t, -3.0, r["2"][0].Score)

	for name, in := range map[string]string{
		"fields=5":    "1 Q0 a 1 2.5\n",
		"rank=float":  "1 Q0 a 1.0 2.5 x\n",
		"score=text":  "1 Q0 a 1 abc x\n",
		"score=nan":   "1 Q0 a 1 NaN x\n",
		"score=inf":   "1 Q0 a 1 +Inf x\n",
		"header=late": "qid Q0 docid rank score tag\n",
	} {
		t.Run("bad="+name, func(t *testing.T) {
			_, err := ReadRun(strings.NewReader("1 Q0 ok 1 1 x\n"+in), "r.txt")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "r.txt:2", "error names file:line")
		})
	}
}

func TestSortTrecEvalOrder(t *testing.T) {
	// Ties on score are broken by docid descending; the rank column is ignored.
	r := mustRun(t, "1 Q0 b 1 1.0 x\n1 Q0 d 2 2.0 x\n1 Q0 c 3 1.0 x\n1 Q0 a 4 1.0 x\n1 Q0 c10 5 1.0 x\n")
	r.Sort()
	var got []string
	for _, e := range r["1"] {
		got = append(got, e.DocID)
	}
	assert.Equal(t, []string{"d", "c10", "c", "b", "a"}, got)
}

func TestParseMetric(t *testing.T) {
	for in, want := range map[string]Metric{
		"ndcg_cut_10": {NDCGCut, 10}, "ndcg_cut.10": {NDCGCut, 10}, "ndcg@5": {NDCGCut, 5},
		"recip_rank": {RecipRank, 0}, "recip_rank_10": {RecipRank, 10}, "mrr@10": {RecipRank, 10},
		"recall_100": {Recall, 100}, "recall.1000": {Recall, 1000}, "P_10": {Precision, 10},
		"map": {MAP, 0}, "map_cut_10": {MAP, 10}, "map_cut.100": {MAP, 100}, "map@10": {MAP, 10},
	} {
		m, err := ParseMetric(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, m, in)
	}
	assert.Equal(t, "recip_rank_10", Metric{RecipRank, 10}.String())
	assert.Equal(t, "ndcg_cut_10", Metric{NDCGCut, 10}.String())
	assert.Equal(t, "map", Metric{MAP, 0}.String())
	assert.Equal(t, "map_cut_10", Metric{MAP, 10}.String())
	for _, m := range []Metric{{RecipRank, 0}, {Recall, 1}, {Precision, 1}, {MAP, 0}} {
		assert.True(t, m.Kind.Binary(), m.String())
	}
	assert.False(t, NDCGCut.Binary())
	for _, bad := range []string{"map_cut", "map_cut_0", "ndcg_cut", "recall", "ndcg_cut_0", "ndcg_cut_-1", ""} {
		_, err := ParseMetric(bad)
		assert.Error(t, err, bad)
	}
	ms, err := ParseMetrics("ndcg_cut_10, recall_100,ndcg_cut.10")
	require.NoError(t, err)
	assert.Equal(t, []Metric{{NDCGCut, 10}, {Recall, 100}}, ms)
}

// TestEvaluateByHand checks each metric against values worked out by hand from
// trec_eval's definitions.
func TestEvaluateByHand(t *testing.T) {
	qrels := mustQrels(t, strings.Join([]string{
		"1 0 a 3", "1 0 b 0", "1 0 c 1", "1 0 d 2", "1 0 z 1",
		"2 0 x 0", // judged, nothing relevant
		"3 0 y 2", // not in the run
	}, "\n"))
	// Order after sorting: b(5) d(4) c(3) e(3, unjudged; "e" > "c" so e first) a(1).
	run := mustRun(t, strings.Join([]string{
		"1 Q0 a 1 1 t", "1 Q0 b 2 5 t", "1 Q0 c 3 3 t", "1 Q0 d 4 4 t", "1 Q0 e 5 3 t",
		"2 Q0 x 1 1 t",
		"9 Q0 q 1 1 t", // not in the qrels: ignored
	}, "\n"))
	ms := []Metric{{NDCGCut, 3}, {NDCGCut, 10}, {RecipRank, 0}, {RecipRank, 1}, {Recall, 3}, {Recall, 100}, {Precision, 2}, {MAP, 0}, {MAP, 3}}
	res, err := Evaluate(run, qrels, ms, Options{})
	require.NoError(t, err)
	require.Len(t, res.Queries, 2)
	q1 := res.Queries[0]
	assert.Equal(t, "1", q1.QID)

	// ranked grades: b0 d2 e- c1 a3
	dcg3 := 2 / math.Log2(3)
	idcg3 := 3/math.Log2(2) + 2/math.Log2(3) + 1/math.Log2(4)
	dcg10 := dcg3 + 1/math.Log2(5) + 3/math.Log2(6)
	idcg10 := idcg3 + 1/math.Log2(5)
	// map: relevant (>= 1) a, c, d, z; retrieved at ranks 2, 4, 5: (1/2 + 2/4 + 3/5) / 4;
	// map_cut_3: only rank 2, still over the 4 relevant.
	want := []float64{dcg3 / idcg3, dcg10 / idcg10, 0.5, 0, 1.0 / 4, 3.0 / 4, 1.0 / 2, (0.5 + 0.5 + 0.6) / 4, 0.5 / 4}
	for i, m := range ms {
		assert.InDelta(t, want[i], q1.Values[i], 1e-12, "qid=1/metric=%s", m)
	}
	for i, m := range ms {
		assert.Equal(t, 0.0, res.Queries[1].Values[i], "qid=2/metric=%s: nothing relevant scores 0", m)
		assert.InDelta(t, want[i]/2, res.Mean[i], 1e-12, "mean/metric=%s", m)
	}

	// rel threshold 2: c (grade 1) is no longer relevant.
	res2, err := Evaluate(run, qrels, []Metric{{RecipRank, 0}, {Recall, 100}, {MAP, 0}}, Options{RelThreshold: 2})
	require.NoError(t, err)
	assert.InDelta(t, 0.5, res2.Queries[0].Values[0], 1e-12, "rr with -l 2")
	assert.InDelta(t, 2.0/2, res2.Queries[0].Values[1], 1e-12, "recall with -l 2")
	assert.InDelta(t, (1.0/2+2.0/5)/2, res2.Queries[0].Values[2], 1e-12, "map with -l 2: d at 2, a at 5, of 2 relevant")

	// -c: qid 3 counts as 0.
	res3, err := Evaluate(run, qrels, ms, Options{Complete: true})
	require.NoError(t, err)
	require.Len(t, res3.Queries, 3)
	assert.InDelta(t, want[0]/3, res3.Mean[0], 1e-12, "complete mean")

	_, err = Evaluate(mustRun(t, "1 Q0 a 1 1 t\n1 Q0 a 2 0 t\n"), qrels, ms, Options{})
	assert.ErrorContains(t, err, "twice", "duplicate docs are an error, as in trec_eval")
	_, err = Evaluate(mustRun(t, "8 Q0 a 1 1 t\n"), qrels, ms, Options{})
	assert.ErrorIs(t, err, ErrNoQueries)
}

// sharedDir returns ../shared/data/trec-dl, or skips (fails under CI=true).
func sharedDir(t *testing.T) string {
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

// candidateRun builds a run from candidates.tsv (set, retriever, qid, docid,
// rank, score) for one set and retriever.
func candidateRun(t *testing.T, dir, set, retriever string) Run {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "candidates.tsv"))
	require.NoError(t, err)
	defer f.Close()
	run := Run{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		require.Len(t, c, 6)
		if c[0] != set || c[1] != retriever {
			continue
		}
		rank, err := strconv.Atoi(c[4])
		require.NoError(t, err)
		score, err := strconv.ParseFloat(c[5], 64)
		require.NoError(t, err)
		run[c[2]] = append(run[c[2]], Entry{QID: c[2], DocID: c[3], Rank: rank, Score: score, Tag: retriever})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, run)
	return run
}

// TestPublishedFigures reproduces the published nDCG@10 of the shared runs.
func TestPublishedFigures(t *testing.T) {
	dir := sharedDir(t)
	for _, tc := range []struct {
		set, retriever, qrels string
		ndcg10                float64
	}{
		{"dl19", "bm25", "qrels.dl19-passage.txt", 0.5058},
		{"dl21", "bm25", "qrels.dl21-passage.txt", 0.4458},
		{"dl19", "splade-pp-ed", "qrels.dl19-passage.txt", 0.7308},
	} {
		t.Run("set="+tc.set+"/run="+tc.retriever, func(t *testing.T) {
			qrels, err := ReadQrelsFile(filepath.Join(dir, tc.qrels))
			require.NoError(t, err)
			run := candidateRun(t, dir, tc.set, tc.retriever)
			res, err := Evaluate(run, qrels, []Metric{{NDCGCut, 10}}, Options{Complete: true})
			require.NoError(t, err)
			assert.Equal(t, strconv.FormatFloat(tc.ndcg10, 'f', 4, 64), strconv.FormatFloat(res.Mean[0], 'f', 4, 64), "nDCG@10 as trec_eval prints it")
			// Without -c the same, since every judged query has results.
			res2, err := Evaluate(run, qrels, []Metric{{NDCGCut, 10}}, Options{})
			require.NoError(t, err)
			assert.Equal(t, len(res.Queries), len(res2.Queries), "every judged query is in the run")
		})
	}
}
