// Package benchreport measures a gomps Reranker under closed-loop load and
// writes the benchmark report (markdown), a per-interval time
// series (JSONL) and plots (gonum.org/v1/plot, SVG and PNG). The pieces are
// separate so a server dashboard can reuse them: Run drives load, Summarize
// turns a run into figures, WriteReport, WriteTimeSeries, the chart
// functions and WritePlot render them.
//
// Every figure comes from its own measurement: request latency from the
// caller's clock around each call, tokenize / queue / inference from the
// library's per-request Timings, pairs, batches and tokens from the engine's
// Stats, CPU time from getrusage and memory from /proc/self/status.
package benchreport

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/gomps/gomps/gomps/pairio"
)

// Request is one call's input: a query and its passages.
type Request struct {
	Query    string
	Passages []string
}

// Workload is a finite, ordered list of requests that the load generator
// cycles through; Describe says where they come from.
type Workload struct {
	Name     string    // "DL19 BM25 (rerank.dl19.bm25-top100.jsonl)" or the synthetic name
	Describe string    // one paragraph on how requests were formed
	Requests []Request // each exactly PairsPerRequest passages
	// Word-count statistics of the pairs (query + passage words), for the report.
	Words LengthStats
}

// LengthStats summarises whitespace-separated word counts.
type LengthStats struct {
	N                  int
	Mean               float64
	P50, P90, P99, Max int
}

func lengthStats(words []int) LengthStats {
	if len(words) == 0 {
		return LengthStats{}
	}
	s := append([]int(nil), words...)
	sort.Ints(s)
	sum := 0
	for _, w := range s {
		sum += w
	}
	nr := func(q float64) int { return s[nearestRank(len(s), q)] }
	return LengthStats{N: len(s), Mean: float64(sum) / float64(len(s)), P50: nr(0.5), P90: nr(0.9), P99: nr(0.99), Max: s[len(s)-1]}
}

// nearestRank is the 0-based index of the q-quantile of n sorted values.
func nearestRank(n int, q float64) int {
	k := int(q*float64(n)+0.999999999) - 1
	return min(max(k, 0), n-1)
}

func wordCount(s string) int { return len(strings.Fields(s)) }

// workloadStats fills w.Words from its requests.
func (w *Workload) fillWords() {
	var words []int
	for _, r := range w.Requests {
		q := wordCount(r.Query)
		for _, p := range r.Passages {
			words = append(words, q+wordCount(p))
		}
	}
	w.Words = lengthStats(words)
}

// LoadWorkload reads a pairs file (any format pairio.Open reads) and forms
// requests of pairsPerRequest pairs: one request per query group in file
// order, its passages taken from the group's own passages in order, wrapping
// around inside the group when it has fewer; a group with more passages
// gives several requests (the last one wrapping). Every request has exactly
// pairsPerRequest passages and one query, as a reranking client sends.
func LoadWorkload(path string, pairsPerRequest int) (*Workload, error) {
	if pairsPerRequest < 1 {
		return nil, fmt.Errorf("%d pairs per request: want at least 1", pairsPerRequest)
	}
	format, err := pairio.FormatOf(path)
	if err != nil {
		return nil, err
	}
	rc, err := pairio.Open(path, format, pairio.Options{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	g := pairio.Groups(rc)
	w := &Workload{Name: path}
	pairs, groups := 0, 0
	for {
		items, err := g.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		groups++
		pairs += len(items)
		for start := 0; start < len(items); start += pairsPerRequest {
			r := Request{Query: items[0].Query, Passages: make([]string, pairsPerRequest)}
			for k := range r.Passages {
				r.Passages[k] = items[(start+k)%len(items)].Passage
			}
			w.Requests = append(w.Requests, r)
		}
	}
	if len(w.Requests) == 0 {
		return nil, fmt.Errorf("%s: no pairs", path)
	}
	w.Describe = fmt.Sprintf("%d pairs in %d query groups read from `%s`; each request is one query with %d of its "+
		"own passages in file order (wrapping inside the group when it has fewer), %d distinct requests, cycled in order.",
		pairs, groups, path, pairsPerRequest, len(w.Requests))
	w.fillWords()
	return w, nil
}

// Word-count distributions of shared/data/SOURCES.md ("Length distribution",
// whitespace-separated words): TREC DL queries (all sets: mean 6.9, p50 7,
// p90 11, p99 15, max 16) and passage words per BM25 pair (17,200 pairs:
// mean 53.1, p50 50, p90 75, p99 116, max 311). The minimum and the 10%
// knot are not in SOURCES.md: they are chosen so the piecewise-linear
// quantile function reproduces the published means (query 7.0, passage 53.5).
var (
	synthQueryKnots   = []knot{{0, 2}, {0.5, 7}, {0.9, 11}, {0.99, 15}, {1, 16}}
	synthPassageKnots = []knot{{0, 5}, {0.1, 30}, {0.5, 50}, {0.9, 75}, {0.99, 116}, {1, 311}}
)

type knot struct{ q, v float64 }

// sampleKnots draws from the piecewise-linear quantile function.
func sampleKnots(k []knot, u float64) int {
	for i := 1; i < len(k); i++ {
		if u <= k[i].q {
			f := (u - k[i-1].q) / (k[i].q - k[i-1].q)
			return max(1, int(k[i-1].v+f*(k[i].v-k[i-1].v)+0.5))
		}
	}
	return int(k[len(k)-1].v)
}

func knotsString(k []knot) string {
	var parts []string
	for _, x := range k {
		parts = append(parts, fmt.Sprintf("q%.2g=%g", x.q, x.v))
	}
	return strings.Join(parts, ", ")
}

// SyntheticName names the built-in workload in reports.
const SyntheticName = "synthetic (TREC DL length distribution of shared/data/SOURCES.md)"

// Synthetic builds a seeded workload of n requests of pairsPerRequest pairs
// whose query and passage word counts follow the TREC DL distributions of
// shared/data/SOURCES.md (see synthQueryKnots, synthPassageKnots); words are
// drawn from a fixed list of common English words.
func Synthetic(pairsPerRequest, n int, seed uint64) (*Workload, error) {
	if pairsPerRequest < 1 || n < 1 {
		return nil, fmt.Errorf("synthetic workload of %d requests x %d pairs: want at least 1 x 1", n, pairsPerRequest)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	text := func(words int) string {
		var b strings.Builder
		for i := range words {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(synthWords[rng.IntN(len(synthWords))])
		}
		return b.String()
	}
	w := &Workload{Name: SyntheticName}
	for range n {
		r := Request{Query: text(sampleKnots(synthQueryKnots, rng.Float64())), Passages: make([]string, pairsPerRequest)}
		for k := range r.Passages {
			r.Passages[k] = text(sampleKnots(synthPassageKnots, rng.Float64()))
		}
		w.Requests = append(w.Requests, r)
	}
	w.Describe = fmt.Sprintf("%d requests of one query and %d passages, seed %d. Word counts are drawn from "+
		"piecewise-linear quantile functions through the knots of shared/data/SOURCES.md (queries: %s; passages: %s; "+
		"the q0 and q0.1 knots are ours, chosen to match the published means); words are drawn uniformly from "+
		"%d common English words.", n, pairsPerRequest, seed, knotsString(synthQueryKnots), knotsString(synthPassageKnots), len(synthWords))
	w.fillWords()
	return w, nil
}

var synthWords = strings.Fields(`the of and to in is was for on that with as by at from his are were it an
which be this has also had not first one their its new after but who they have her she two been other when
there all during into school time may years more most only over city some world would where later up such
used many can state about national out known university united then made state what how why does long water
people body blood heart cause definition average cost price pain symptoms temperature weather country county
river population name meaning common type types treatment disease process system day days number money food
energy light area small large high low human cells cell plant animal language history war government law
company business service services make take use help find work play work home family child children health
medical doctor test rate salary job house car phone computer software data information internet power
form forms best between different example examples difference effect effects long short side sleep skin
weight loss diet vitamin protein sugar muscle bone brain level levels normal range hours minutes miles
feet degrees percent dollars year month week today early late north south east west american english`)
