package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps/trec"
)

func init() { register(newEvalCommand()) }

// newEvalCommand builds the eval command; tests build fresh ones because
// urfave/cli flags keep state between runs.
func newEvalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "evaluate a TREC run against qrels with trec_eval's definitions",
		UsageText: "gomps eval --run RUN --qrels QRELS [--metric ndcg_cut_10,recip_rank_10,recall_100,map] [--rel-threshold 1]",
		Description: `Computes nDCG@k (gain = relevance grade, log2 discount, ideal ranking from the qrels),
reciprocal rank (MRR when averaged; recip_rank_10 stops at rank 10, like trec_eval -M 10),
recall@k, P@k, and average precision (MAP when averaged; map_cut_k stops at rank k and
still divides by every relevant document) exactly as trec_eval 9 does: each query's run
is re-sorted by score descending, ties by docid descending, ignoring the rank column;
unjudged documents are non-relevant; duplicate documents are an error. The mean is over
queries present in both the qrels and the run, or over every qrels query with --complete
(trec_eval -c).

Every measure but nDCG is binary: a document is relevant when its grade is at least
--rel-threshold (trec_eval -l; default 1, as in trec_eval). Each binary measure's row
ends with its threshold ("rel>=1"). When the qrels are graded above 1 (TREC DL grades
0-3), a note on stderr (and "notes" in --json) says that TREC DL reports its binary
measures at level 2 (--rel-threshold 2), as Pyserini's DL evaluations do, so figures at
level 1 are not compared with those unknowingly.

The run has 6 columns "qid Q0 docid rank score tag" (an optional header row is skipped);
qrels have 4 columns "qid iter docid rel" where iter (0 or Q0) is ignored.`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name: "run", Usage: "TREC run file to evaluate (qid Q0 docid rank score tag); - reads standard input",
				EnvVars: []string{"GOMPS_RUN"}, Required: true, TakesFile: true,
			},
			&cli.StringFlag{
				Name: "qrels", Usage: "TREC qrels file (qid iter docid rel)",
				EnvVars: []string{"GOMPS_QRELS"}, Required: true, TakesFile: true,
			},
			&cli.StringFlag{
				Name:    "metric",
				Usage:   "comma-separated metrics: ndcg_cut_K, recip_rank or recip_rank_K, recall_K, P_K, map, map_cut_K (trec_eval's ndcg_cut.K spelling works too)",
				Value:   "ndcg_cut_10,recip_rank_10,recall_100,map",
				EnvVars: []string{"GOMPS_METRIC"},
			},
			&cli.IntFlag{
				Name: "rel-threshold", Aliases: []string{"l"},
				Usage:   "minimum relevance grade counted as relevant by recip_rank, recall, P and map (trec_eval -l); nDCG uses every positive grade",
				Value:   1,
				EnvVars: []string{"GOMPS_REL_THRESHOLD"},
			},
			&cli.BoolFlag{
				Name:    "complete",
				Usage:   "average over every qrels query, counting queries missing from the run as 0 (trec_eval -c)",
				EnvVars: []string{"GOMPS_COMPLETE"},
			},
			&cli.BoolFlag{
				Name: "per-query", Aliases: []string{"q"},
				Usage:   "also print each query's values (trec_eval -q)",
				EnvVars: []string{"GOMPS_PER_QUERY"},
			},
			&cli.BoolFlag{
				Name:    "json",
				Usage:   "print one JSON object instead of trec_eval's table",
				EnvVars: []string{"GOMPS_JSON"},
			},
		},
		Action: evalAction,
	}
}

func evalAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (use --run and --qrels)", c.Args().First())
	}
	for _, name := range []string{"run", "qrels"} {
		if c.String(name) == "" {
			return fmt.Errorf("--%s is empty", name)
		}
	}
	metrics, err := trec.ParseMetrics(c.String("metric"))
	if err != nil {
		return err
	}
	thr := c.Int("rel-threshold")
	if thr < 1 {
		return fmt.Errorf("--rel-threshold %d: must be at least 1", thr)
	}
	qrels, err := trec.ReadQrelsFile(c.String("qrels"))
	if err != nil {
		return err
	}
	var run trec.Run
	if p := c.String("run"); p == "-" {
		run, err = trec.ReadRun(os.Stdin, "<stdin>")
	} else {
		run, err = trec.ReadRunFile(p)
	}
	if err != nil {
		return err
	}
	res, err := trec.Evaluate(run, qrels, metrics, trec.Options{RelThreshold: thr, Complete: c.Bool("complete")})
	if err != nil {
		return err
	}
	notes := evalNotes(qrels, res.Metrics, thr)
	w := c.App.Writer
	if c.Bool("json") {
		type out struct {
			NumQ          int                           `json:"num_q"`
			Metrics       map[string]float64            `json:"metrics"`
			RelThreshold  int                           `json:"rel_threshold"`
			BinaryMetrics []string                      `json:"binary_metrics"`
			Notes         []string                      `json:"notes,omitempty"`
			PerQuery      map[string]map[string]float64 `json:"per_query,omitempty"`
		}
		o := out{NumQ: len(res.Queries), Metrics: map[string]float64{}, RelThreshold: thr, BinaryMetrics: []string{}, Notes: notes}
		for i, m := range res.Metrics {
			o.Metrics[m.String()] = res.Mean[i]
			if m.Kind.Binary() {
				o.BinaryMetrics = append(o.BinaryMetrics, m.String())
			}
		}
		if c.Bool("per-query") {
			o.PerQuery = map[string]map[string]float64{}
			for _, q := range res.Queries {
				vs := map[string]float64{}
				for i, m := range res.Metrics {
					vs[m.String()] = q.Values[i]
				}
				o.PerQuery[q.QID] = vs
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(o)
	}
	level := func(m trec.Metric) string {
		if m.Kind.Binary() {
			return fmt.Sprintf("\trel>=%d", thr)
		}
		return ""
	}
	var b strings.Builder
	if c.Bool("per-query") {
		for i, m := range res.Metrics {
			for _, q := range res.Queries {
				fmt.Fprintf(&b, "%-22s\t%s\t%.4f%s\n", m, q.QID, q.Values[i], level(m))
			}
		}
	}
	fmt.Fprintf(&b, "%-22s\tall\t%d\n", "num_q", len(res.Queries))
	for i, m := range res.Metrics {
		fmt.Fprintf(&b, "%-22s\tall\t%.4f%s\n", m, res.Mean[i], level(m))
	}
	if _, err := fmt.Fprint(w, b.String()); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(c.App.ErrWriter, "eval: note: %s\n", n)
	}
	return nil
}

// evalNotes says, for graded qrels and binary measures, at which relevance
// level TREC DL reports those measures.
func evalNotes(q trec.Qrels, metrics []trec.Metric, thr int) []string {
	top := q.MaxGrade()
	var binary []string
	for _, m := range metrics {
		if m.Kind.Binary() {
			binary = append(binary, m.String())
		}
	}
	if top < 2 || len(binary) == 0 {
		return nil
	}
	n := fmt.Sprintf("the qrels are graded 0-%d, as TREC DL's are; TREC DL reports its binary measures at relevance level 2 "+
		"(trec_eval -l 2, as Pyserini's DL evaluations do). %s here count grade >= %d as relevant", top, strings.Join(binary, ", "), thr)
	if thr < 2 {
		n += "; add --rel-threshold 2 to compare with figures at level 2"
	}
	return []string{n}
}
