package trec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind names a metric family.
type Kind int

// Metric families, named as trec_eval names them.
const (
	NDCGCut   Kind = iota + 1 // ndcg_cut: nDCG at a cutoff, gain = relevance grade
	RecipRank                 // recip_rank: 1/rank of the first relevant document (MRR when averaged)
	Recall                    // recall: relevant retrieved in the top k / relevant judged
	Precision                 // P: relevant retrieved in the top k / k
	MAP                       // map (map_cut at a cutoff): average precision (MAP when averaged)
)

var kindNames = map[Kind]string{NDCGCut: "ndcg_cut", RecipRank: "recip_rank", Recall: "recall", Precision: "P", MAP: "map_cut"}

// Binary reports whether the metric counts a document as relevant or not by
// Options.RelThreshold (every kind but nDCG, whose gain is the grade).
func (k Kind) Binary() bool { return k != NDCGCut }

// Metric is one metric with its cutoff. K = 0 means no cutoff, allowed only
// for RecipRank and MAP.
type Metric struct {
	Kind Kind
	K    int
}

// String returns the metric's name as trec_eval prints it (ndcg_cut_10,
// recall_100, P_10, map, map_cut_10), with recip_rank_K for reciprocal rank
// cut at K (trec_eval -M K -m recip_rank).
func (m Metric) String() string {
	if m.K == 0 {
		if m.Kind == MAP {
			return "map"
		}
		return kindNames[m.Kind]
	}
	return kindNames[m.Kind] + "_" + strconv.Itoa(m.K)
}

// DefaultMetrics are nDCG@10, MRR@10, recall@100 and MAP.
var DefaultMetrics = []Metric{{NDCGCut, 10}, {RecipRank, 10}, {Recall, 100}, {MAP, 0}}

// ParseMetric parses a metric name: ndcg_cut_10 or ndcg_cut.10, recip_rank or
// recip_rank_10, recall_100 or recall.100, P_10 or P.10, map, map_cut_10 or
// map_cut.10. Aliases ndcg@10, mrr@10, recall@100 and map@10 are accepted too.
func ParseMetric(s string) (Metric, error) {
	s = strings.TrimSpace(s)
	name, k := s, ""
	if i := strings.LastIndexAny(s, "_.@"); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			name, k = s[:i], s[i+1:]
		}
	}
	var kind Kind
	switch strings.ToLower(name) {
	case "ndcg_cut", "ndcg":
		kind = NDCGCut
	case "recip_rank", "mrr", "rr":
		kind = RecipRank
	case "recall":
		kind = Recall
	case "p", "precision":
		kind = Precision
	case "map", "map_cut":
		kind = MAP
	default:
		return Metric{}, fmt.Errorf("unknown metric %q (known: ndcg_cut_K, recip_rank[_K], recall_K, P_K, map, map_cut_K)", s)
	}
	if strings.EqualFold(name, "map_cut") && k == "" {
		return Metric{}, fmt.Errorf("metric %q needs a cutoff, as in map_cut_10 (map has none)", s)
	}
	m := Metric{Kind: kind}
	if k != "" {
		n, _ := strconv.Atoi(k)
		if n <= 0 {
			return Metric{}, fmt.Errorf("metric %q: cutoff must be positive", s)
		}
		m.K = n
	} else if kind != RecipRank && kind != MAP {
		return Metric{}, fmt.Errorf("metric %q needs a cutoff, as in %s_10", s, kindNames[kind])
	}
	return m, nil
}

// ParseMetrics parses a comma-separated list of metrics (see ParseMetric).
func ParseMetrics(s string) ([]Metric, error) {
	var ms []Metric
	seen := map[Metric]bool{}
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		m, err := ParseMetric(part)
		if err != nil {
			return nil, err
		}
		if !seen[m] {
			seen[m] = true
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no metric given")
	}
	return ms, nil
}

// Options control an evaluation.
type Options struct {
	// RelThreshold is the minimum grade that counts as relevant for the
	// binary metrics, recip_rank, recall, P and map (trec_eval -l; default 1
	// when zero). nDCG always uses every positive grade as its gain.
	RelThreshold int
	// Complete averages over every qrels query, a query missing from the run
	// scoring 0 (trec_eval -c).
	Complete bool
}

// QueryResult holds one query's metric values, in the order of the metrics.
type QueryResult struct {
	QID    string
	Values []float64
}

// Result is an evaluation: per-query values and their means.
type Result struct {
	Metrics []Metric
	Queries []QueryResult // evaluated queries, ascending qid
	Mean    []float64
}

// ErrNoQueries means no query has both judgements and results.
var ErrNoQueries = errors.New("no queries with both results and relevance judgements")

// Evaluate computes metrics of run against qrels with trec_eval's rules (see
// the package comment). run is not modified.
func Evaluate(run Run, qrels Qrels, metrics []Metric, opt Options) (*Result, error) {
	if len(metrics) == 0 {
		metrics = DefaultMetrics
	}
	thr := opt.RelThreshold
	if thr == 0 {
		thr = 1
	}
	for _, m := range metrics {
		if _, ok := kindNames[m.Kind]; !ok || m.K < 0 || (m.K == 0 && m.Kind == Precision) {
			return nil, fmt.Errorf("invalid metric %+v", m)
		}
	}
	res := &Result{Metrics: metrics, Mean: make([]float64, len(metrics))}
	for _, qid := range qrels.QIDs() {
		judged := qrels[qid]
		entries, ok := run[qid]
		if !ok && !opt.Complete {
			continue
		}
		rels, err := rankedRels(qid, entries, judged)
		if err != nil {
			return nil, err
		}
		qr := QueryResult{QID: qid, Values: make([]float64, len(metrics))}
		for i, m := range metrics {
			qr.Values[i] = compute(m, rels, judged, thr)
			res.Mean[i] += qr.Values[i]
		}
		res.Queries = append(res.Queries, qr)
	}
	if len(res.Queries) == 0 {
		return nil, ErrNoQueries
	}
	for i := range res.Mean {
		res.Mean[i] /= float64(len(res.Queries))
	}
	return res, nil
}

// rankedRels sorts a copy of entries in trec_eval order and returns the grade
// of each ranked document, -1 for documents without a judgement.
func rankedRels(qid string, entries []Entry, judged map[string]int) ([]int, error) {
	es := append([]Entry(nil), entries...)
	SortEntries(es)
	seen := make(map[string]struct{}, len(es))
	rels := make([]int, len(es))
	for i, e := range es {
		if _, dup := seen[e.DocID]; dup {
			return nil, fmt.Errorf("run has docid %s twice for qid %s", e.DocID, qid)
		}
		seen[e.DocID] = struct{}{}
		if g, ok := judged[e.DocID]; ok {
			rels[i] = g
		} else {
			rels[i] = -1
		}
	}
	return rels, nil
}

func compute(m Metric, rels []int, judged map[string]int, thr int) float64 {
	cut := len(rels)
	if m.K > 0 && m.K < cut {
		cut = m.K
	}
	switch m.Kind {
	case NDCGCut:
		dcg := 0.0
		for i := 0; i < cut; i++ {
			if rels[i] > 0 {
				dcg += float64(rels[i]) / math.Log2(float64(i+2))
			}
		}
		idcg := idealDCG(judged, m.K)
		if idcg > 0 {
			return dcg / idcg
		}
		return dcg
	case RecipRank:
		for i := 0; i < cut; i++ {
			if rels[i] >= thr {
				return 1 / float64(i+1)
			}
		}
		return 0
	case Recall:
		numRel := countRel(gradesOf(judged), thr)
		if numRel == 0 {
			return 0
		}
		return float64(countRel(rels[:cut], thr)) / float64(numRel)
	case Precision:
		return float64(countRel(rels[:cut], thr)) / float64(m.K)
	case MAP:
		// trec_eval's map and map_cut: the precision at the rank of each
		// relevant document retrieved (within the cutoff), summed and
		// divided by the number of relevant documents judged.
		numRel := countRel(gradesOf(judged), thr)
		if numRel == 0 {
			return 0
		}
		sum, found := 0.0, 0
		for i := 0; i < cut; i++ {
			if rels[i] >= thr {
				found++
				sum += float64(found) / float64(i+1)
			}
		}
		return sum / float64(numRel)
	}
	panic("trec: unknown metric kind")
}

// gradesOf lists the judged grades of a query.
func gradesOf(judged map[string]int) []int {
	gs := make([]int, 0, len(judged))
	for _, g := range judged {
		gs = append(gs, g)
	}
	return gs
}

func countRel(rels []int, thr int) int {
	n := 0
	for _, g := range rels {
		if g >= thr {
			n++
		}
	}
	return n
}

// idealDCG is the DCG of the judged positive grades in descending order, cut
// at k.
func idealDCG(judged map[string]int, k int) float64 {
	// Grades are small integers (trec_eval limits them to [-127, 127]): count them.
	var count [128]int
	for _, g := range judged {
		if g > 0 {
			count[g]++
		}
	}
	dcg, i := 0.0, 0
	for g := 127; g > 0; g-- {
		for c := 0; c < count[g]; c++ {
			if k > 0 && i == k {
				return dcg
			}
			dcg += float64(g) / math.Log2(float64(i+2))
			i++
		}
	}
	return dcg
}
