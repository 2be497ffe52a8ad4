package trec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// independentGolden is testdata/pytrec_eval.json, written by
// tools/golden/trec/run.sh with pytrec_eval and ir_measures.
type independentGolden struct {
	Provenance struct {
		Command string            `json:"command"`
		Tools   map[string]string `json:"tools"`
	} `json:"provenance"`
	Cases []struct {
		Name         string                        `json:"name"`
		Qrels        string                        `json:"qrels"`
		RelThreshold int                           `json:"rel_threshold"`
		NumQ         int                           `json:"num_q"`
		Mean         map[string]float64            `json:"mean"`
		PerQuery     map[string]map[string]float64 `json:"per_query"`
	} `json:"cases"`
}

// TestIndependentFigures compares Evaluate with trec_eval's own code
// (pytrec_eval) and ir_measures on the same runs and qrels, at relevance
// levels 1 and 2.
func TestIndependentFigures(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "pytrec_eval.json"))
	require.NoError(t, err)
	var g independentGolden
	require.NoError(t, json.Unmarshal(b, &g))
	require.Equal(t, "bash tools/golden/trec/run.sh", g.Provenance.Command)
	require.NotEmpty(t, g.Provenance.Tools["pytrec-eval-terrier"])
	require.Len(t, g.Cases, 8)

	examples := filepath.Join("..", "..", "examples")
	for _, c := range g.Cases {
		t.Run("run="+c.Name+"/l="+string(rune('0'+c.RelThreshold)), func(t *testing.T) {
			var run Run
			var qrels Qrels
			var err error
			if c.Name == "examples" {
				run, err = ReadRunFile(filepath.Join(examples, "first-stage.run"))
				require.NoError(t, err)
				qrels, err = ReadQrelsFile(filepath.Join(examples, "qrels.txt"))
				require.NoError(t, err)
			} else {
				dir := sharedDir(t)
				set, retriever, _ := strings.Cut(c.Name, ".")
				run = candidateRun(t, dir, set, retriever)
				qrels, err = ReadQrelsFile(filepath.Join(dir, c.Qrels))
				require.NoError(t, err)
			}
			var metrics []Metric
			for name := range c.Mean {
				m, err := ParseMetric(name)
				require.NoError(t, err)
				metrics = append(metrics, m)
			}
			require.Len(t, metrics, 8)
			res, err := Evaluate(run, qrels, metrics, Options{RelThreshold: c.RelThreshold})
			require.NoError(t, err)
			assert.Equal(t, c.NumQ, len(res.Queries))
			for i, m := range metrics {
				assert.InDelta(t, c.Mean[m.String()], res.Mean[i], 1e-12, "mean %s", m)
				for _, q := range res.Queries {
					if want, ok := c.PerQuery[m.String()][q.QID]; ok {
						assert.InDelta(t, want, q.Values[i], 1e-12, "qid %s %s", q.QID, m)
					}
				}
			}
			for name, per := range c.PerQuery {
				assert.Len(t, per, c.NumQ, "per-query %s covers every query", name)
			}
		})
	}
}
