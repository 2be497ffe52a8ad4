//go:build cgo

package gomps

import (
	"bufio"
	"context"
	"encoding/json"

	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/weights"
)

// loadModel loads path on the default backend in the named precision, as
// Open would, for tests that drive a model below the engine.
func loadModel(path, precision string, maxBatch, maxSeq int) (*native.Model, error) {
	b, err := native.Default()
	if err != nil {
		return nil, err
	}
	p, _ := native.ParsePrecision(precision)
	return b.Load(path, native.Options{Precision: p, MaxBatch: maxBatch, MaxSeq: maxSeq})
}

// inCI reports whether missing data or models must fail instead of skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing fails under CI=true (unless optional) and skips otherwise.
func missing(t testing.TB, optional bool, format string, args ...any) {
	t.Helper()
	if inCI() && !optional {
		t.Fatalf("required under CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// sharedDir returns ../shared (beside the repo), or fails under CI=true
// (unless GOMPS_SHARED_OPTIONAL=1) and skips otherwise.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "shared"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "data", "trec-dl")); err != nil {
		missing(t, os.Getenv("GOMPS_SHARED_OPTIONAL") == "1", "shared data not found: %v", err)
	}
	return dir
}

// testModelPath returns the real-shape test model ($GOMPS_TEST_MODEL, else
// the one tools/setup.sh installs), or fails under CI=true / skips.
func testModelPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("GOMPS_TEST_MODEL")
	if p == "" {
		p = TestModelPath()
	}
	if _, err := os.Stat(p); err != nil {
		missing(t, false, "real-shape test model not found (run bash tools/setup.sh): %v", err)
	}
	return p
}

var (
	tinyOnce sync.Once
	tinyPath string
	tinyErr  error
)

// tinyModelPath converts testdata/tiny to a native file once per test
// binary (removed by TestMain).
func tinyModelPath(t testing.TB) string {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gomps-tiny-*")
		if err != nil {
			tinyErr = err
			return
		}
		tmpDirs = append(tmpDirs, dir)
		tinyPath = filepath.Join(dir, "tiny.gomps")
		_, tinyErr = weights.Convert(filepath.Join("testdata", "tiny"), tinyPath, weights.ConvertOptions{Name: "gomps-test/tiny"})
	})
	require.NoError(t, tinyErr, "converting testdata/tiny")
	return tinyPath
}

var tmpDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tmpDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// goldenCase is one line of testdata/golden/*.jsonl (see tools/golden/generate.py).
type goldenCase struct {
	Kind      string  `json:"kind"`
	Name      string  `json:"name"`
	File      string  `json:"file"`
	QID       string  `json:"qid"`
	DocID     string  `json:"docid"`
	Transform string  `json:"transform"`
	Query     string  `json:"query"`
	Passage   string  `json:"passage"`
	Logit     float64 `json:"logit"`
	QTokens   int     `json:"q_tokens"`
	PTokens   int     `json:"p_tokens"`
	Len       int     `json:"len"`
	IDsSHA256 string  `json:"ids_sha256"`
}

// id is a stable, greppable case name.
func (c goldenCase) id(i int) string {
	if c.Transform == "text" {
		return "case=" + strconv.Itoa(i) + "/" + c.Name
	}
	return "case=" + strconv.Itoa(i) + "/" + c.Kind + "/" + c.QID + "/" + c.DocID + "/" + c.Transform
}

// rerankQuery is one query of shared/data/trec-dl/rerank.*.jsonl.
type rerankQuery struct {
	QID        string `json:"qid"`
	Query      string `json:"query"`
	Candidates []struct {
		DocID string `json:"docid"`
		Rank  int    `json:"rank"`
		Text  string `json:"text"`
	} `json:"candidates"`
}

var (
	rerankMu    sync.Mutex
	rerankCache = map[string]map[string]*rerankQuery{}
)

func loadRerank(t testing.TB, shared, file string) map[string]*rerankQuery {
	t.Helper()
	rerankMu.Lock()
	defer rerankMu.Unlock()
	if m, ok := rerankCache[file]; ok {
		return m
	}
	f, err := os.Open(filepath.Join(shared, "data", "trec-dl", file))
	require.NoError(t, err)
	defer f.Close()
	m := map[string]*rerankQuery{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var q rerankQuery
		require.NoError(t, json.Unmarshal(sc.Bytes(), &q))
		m[q.QID] = &q
	}
	require.NoError(t, sc.Err())
	rerankCache[file] = m
	return m
}

// rebuild returns a case's (query, passage), following
// testdata/golden/README.md (the transforms of tools/golden/generate.py).
func rebuild(t testing.TB, shared string, c goldenCase) (string, string) {
	t.Helper()
	if c.Transform == "text" {
		return c.Query, c.Passage
	}
	q, ok := loadRerank(t, shared, c.File)[c.QID]
	require.True(t, ok, "golden: %s: no qid %s", c.File, c.QID)
	cand := func(docid string) string {
		for _, d := range q.Candidates {
			if d.DocID == docid {
				return d.Text
			}
		}
		t.Fatalf("golden: %s qid %s: no candidate %s", c.File, c.QID, docid)
		return ""
	}
	joined := func(first, last int) string {
		var parts []string
		for _, d := range q.Candidates {
			if d.Rank >= first && d.Rank <= last {
				parts = append(parts, d.Text)
			}
		}
		return strings.Join(parts, " ")
	}
	kind, arg, _ := strings.Cut(c.Transform, ":")
	n, _ := strconv.Atoi(arg)
	switch kind {
	case "none":
		return q.Query, cand(c.DocID)
	case "swap":
		return cand(c.DocID), q.Query
	case "empty_passage":
		return q.Query, ""
	case "join":
		return q.Query, joined(1, n)
	case "joinq":
		return joined(1, n), cand(c.DocID)
	case "joinboth":
		return joined(1, n), joined(n+1, 2*n)
	}
	t.Fatalf("golden: unknown transform %q", c.Transform)
	return "", ""
}

// loadGoldens reads testdata/golden/<name>.jsonl and fills every case's text.
// Without the shared data only the synthetic cases are returned (the
// missing data fails under CI=true unless GOMPS_SHARED_OPTIONAL=1, and is
// logged otherwise); needShared false returns only those at once.
func loadGoldens(t testing.TB, name string, needShared bool) []goldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", name+".jsonl"))
	require.NoError(t, err)
	var cases []goldenCase
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var c goldenCase
		require.NoError(t, json.Unmarshal([]byte(line), &c), "golden line %d", i+1)
		cases = append(cases, c)
	}
	require.Greater(t, len(cases), 100, "golden file too small")
	shared := ""
	if needShared {
		dir, err := filepath.Abs(filepath.Join("..", "..", "shared"))
		require.NoError(t, err)
		if _, serr := os.Stat(filepath.Join(dir, "data", "trec-dl")); serr == nil {
			shared = dir
		} else if inCI() && os.Getenv("GOMPS_SHARED_OPTIONAL") != "1" {
			t.Fatalf("shared data required under CI=true: %v", serr)
		} else {
			t.Logf("shared data not found (%v): only the synthetic golden cases run", serr)
		}
	}
	out := cases[:0]
	for _, c := range cases {
		if c.Transform != "text" && shared == "" {
			continue
		}
		c.Query, c.Passage = rebuild(t, shared, c)
		out = append(out, c)
	}
	return out
}

// scorePairs is Do over pairs, its scores.
func scorePairs(r *Reranker, ctx context.Context, pairs []Pair) ([]float32, error) {
	res, err := r.Do(ctx, Request{Pairs: pairs})
	return res.Scores, err
}
