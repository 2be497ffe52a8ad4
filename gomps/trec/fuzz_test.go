package trec

import (
	"bytes"
	"testing"
)

func FuzzReadRunQrels(f *testing.F) {
	f.Add([]byte("qid Q0 docid rank score tag\n1 Q0 a 1 2.5 t\n1 Q0 b 2 2.5 t\n"), []byte("1 0 a 2\n1 Q0 b 0\n"))
	f.Add([]byte("1 Q0 a 1 NaN t\n"), []byte("1 0 a 300\n"))
	f.Add([]byte("1 Q0 a 1 1e308 t\n1 Q0 a 1 1 t\n"), []byte("1 0 a -5\n# c\n"))
	f.Fuzz(func(t *testing.T, runData, qrelsData []byte) {
		run, err := ReadRun(bytes.NewReader(runData), "r")
		if err != nil {
			return
		}
		qrels, err := ReadQrels(bytes.NewReader(qrelsData), "q")
		if err != nil {
			return
		}
		ms := []Metric{{NDCGCut, 10}, {RecipRank, 0}, {RecipRank, 10}, {Recall, 100}, {Precision, 5}}
		res, err := Evaluate(run, qrels, ms, Options{Complete: len(runData)%2 == 0})
		if err != nil {
			return
		}
		for _, q := range res.Queries {
			for i, v := range q.Values {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("qid %s %s = %v, outside [0, 1]", q.QID, ms[i], v)
				}
			}
		}
	})
}
