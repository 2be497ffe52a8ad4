package engine

import (
	"cmp"
	"math"
	"slices"
)

// Ranked is one entry of a ranking: a passage's input index and its score.
type Ranked struct {
	Index int
	Score float32
}

// Rank returns the topK highest scores with their input indices, sorted by
// score descending. Equal scores keep input order; NaN ranks below every
// number. topK <= 0 or past len(scores) returns every entry. O(n log n),
// one allocation.
func Rank(scores []float32, topK int) []Ranked {
	out := make([]Ranked, len(scores))
	for i, s := range scores {
		out[i] = Ranked{Index: i, Score: s}
	}
	slices.SortStableFunc(out, func(a, b Ranked) int {
		an, bn := math.IsNaN(float64(a.Score)), math.IsNaN(float64(b.Score))
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		}
		return cmp.Compare(b.Score, a.Score)
	})
	if topK > 0 && topK < len(out) {
		out = out[:topK:topK]
	}
	return out
}
