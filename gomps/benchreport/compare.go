package benchreport

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// ResultsVersion is the version of the results file format.
const ResultsVersion = 1

// Results is the machine-readable side of a report, written beside it and
// read back by Compare: the environment and each run's headline figures.
type Results struct {
	Version     int          `json:"version"`
	Environment Environment  `json:"environment"`
	Runs        []RunFigures `json:"runs"`
}

// RunFigures are one configuration's figures, by name (see FigureNames).
type RunFigures struct {
	PairsPerRequest int                `json:"batch"`
	Concurrency     int                `json:"concurrency"`
	Figures         map[string]float64 `json:"figures"` // figures that could not be measured are absent
}

// Figure describes one headline figure of a run.
type Figure struct {
	Name         string // key in RunFigures.Figures
	Unit         string
	HigherBetter bool
	value        func(*PhaseSummary) float64
}

// Figures are the headline figures of a run, in the order Compare prints
// them.
var Figures = []Figure{
	{"tp_avg", "pairs/s", true, func(s *PhaseSummary) float64 { return s.TPOverall }},
	{"lat_mean", "ms", false, func(s *PhaseSummary) float64 { return s.Latency.Mean }},
	{"lat_p50", "ms", false, func(s *PhaseSummary) float64 { return s.Latency.P50 }},
	{"lat_p95", "ms", false, func(s *PhaseSummary) float64 { return s.Latency.P95 }},
	{"lat_p99", "ms", false, func(s *PhaseSummary) float64 { return s.Latency.P99 }},
	{"tp_p95_per_request", "pairs/s", true, func(s *PhaseSummary) float64 { return s.TPPerRequest.P95 }},
	{"tokenize_mean", "ms", false, func(s *PhaseSummary) float64 { return s.Tokenize.Mean }},
	{"queue_mean", "ms", false, func(s *PhaseSummary) float64 { return s.Queue.Mean }},
	{"inference_mean", "ms", false, func(s *PhaseSummary) float64 { return s.Inference.Mean }},
	{"padding_waste", "%", false, func(s *PhaseSummary) float64 { return 100 * s.Engine.PaddingWaste() }},
	{"mean_batch_rows", "rows", true, func(s *PhaseSummary) float64 {
		if s.Engine.Batches == 0 {
			return math.NaN()
		}
		return float64(s.Engine.Rows) / float64(s.Engine.Batches)
	}},
	{"cpu", CPUUnit, false, func(s *PhaseSummary) float64 { return s.CPUPct }},
	{"pairs_per_cpu_second", "pairs", true, func(s *PhaseSummary) float64 {
		if s.CPU <= 0 {
			return math.NaN()
		}
		return float64(s.Pairs) / s.CPU.Seconds()
	}},
	{"peak_rss", "MB", false, func(s *PhaseSummary) float64 {
		if s.HWMMB < 0 {
			return math.NaN()
		}
		return s.HWMMB
	}},
	{"other_processes_cpu", "% of the machine", false, func(s *PhaseSummary) float64 {
		if !s.Contention.Known {
			return math.NaN()
		}
		return 100 * s.Contention.OtherShare
	}},
	{"steal", "% of the machine", false, func(s *PhaseSummary) float64 {
		if !s.Contention.Known {
			return math.NaN()
		}
		return 100 * s.Contention.StealShare
	}},
}

// ResultsOf collects a report's figures.
func ResultsOf(r *Report) Results {
	res := Results{Version: ResultsVersion, Environment: r.Env}
	for _, run := range r.Runs {
		rf := RunFigures{PairsPerRequest: run.Config.PairsPerRequest, Concurrency: run.Config.Concurrency, Figures: map[string]float64{}}
		for _, f := range Figures {
			if v := f.value(run.Measure); !math.IsNaN(v) && !math.IsInf(v, 0) {
				rf.Figures[f.Name] = v
			}
		}
		res.Runs = append(res.Runs, rf)
	}
	return res
}

// WriteResults writes r as indented JSON.
func WriteResults(w io.Writer, r Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadResults reads a results file written by WriteResults.
func ReadResults(path string) (Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Results{}, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return Results{}, fmt.Errorf("%s: %w", path, err)
	}
	if r.Version != ResultsVersion {
		return Results{}, fmt.Errorf("%s: results version %d, want %d (a gomps bench results file)", path, r.Version, ResultsVersion)
	}
	return r, nil
}

// Compare prints two results side by side: what differs in how they were
// made, then, for each configuration in both, every figure of A and B with
// the ratio B/A and which one is better.
func Compare(w io.Writer, nameA, nameB string, a, b Results) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "\tA\tB\n\t%s\t%s\n", nameA, nameB)
	ea, eb := a.Environment, b.Environment
	for _, row := range []struct{ name, a, b string }{
		{"gomps", ea.Version + " " + ea.Commit + modifiedMark(ea.Modified), eb.Version + " " + eb.Commit + modifiedMark(eb.Modified)},
		{"model", ea.Model + " " + ea.SHA256, eb.Model + " " + eb.SHA256},
		{"backend", ea.Backend + " " + ea.ISA + " " + ea.Precision, eb.Backend + " " + eb.ISA + " " + eb.Precision},
		{"cpu", fmt.Sprintf("%s x %d", ea.CPUModel, ea.CPUs), fmt.Sprintf("%s x %d", eb.CPUModel, eb.CPUs)},
		{"os", ea.OS, eb.OS},
		{"command", ea.Command, eb.Command},
	} {
		mark := ""
		if row.a != row.b {
			mark = "  (differs)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", row.name, row.a, row.b, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	key := func(r RunFigures) string { return fmt.Sprintf("batch=%d, conc=%d", r.PairsPerRequest, r.Concurrency) }
	inB := map[string]RunFigures{}
	for _, r := range b.Runs {
		inB[key(r)] = r
	}
	matched := map[string]bool{}
	for _, ra := range a.Runs {
		rb, ok := inB[key(ra)]
		if !ok {
			fmt.Fprintf(w, "\n%s: only in A\n", key(ra))
			continue
		}
		matched[key(ra)] = true
		fmt.Fprintf(w, "\n%s\n", key(ra))
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "figure\tunit\tA\tB\tB/A\tbetter\t\n")
		for _, f := range Figures {
			va, okA := ra.Figures[f.Name]
			vb, okB := rb.Figures[f.Name]
			if !okA && !okB {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Name, f.Unit, fmtFigure(va, okA), fmtFigure(vb, okB), ratio(va, vb, okA && okB), better(f, va, vb, okA && okB))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, rb := range b.Runs {
		if !matched[key(rb)] {
			fmt.Fprintf(w, "\n%s: only in B\n", key(rb))
		}
	}
	var warn []string
	for name, r := range map[string]Results{"A": a, "B": b} {
		for _, run := range r.Runs {
			if run.Figures["other_processes_cpu"] > 100*MaxOtherCPUShare || run.Figures["steal"] > 100*MaxStealShare {
				warn = append(warn, fmt.Sprintf("%s (%s)", name, key(run)))
			}
		}
	}
	if len(warn) > 0 {
		sort.Strings(warn)
		fmt.Fprintf(w, "\nwarning: contended machine in %s: other processes or steal took more than %.0f%% / %.0f%% of its CPU time\n",
			strings.Join(warn, ", "), 100*MaxOtherCPUShare, 100*MaxStealShare)
	}
	return nil
}

func modifiedMark(m bool) string {
	if m {
		return " (modified)"
	}
	return ""
}

func fmtFigure(v float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b float64, ok bool) string {
	if !ok || a == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", b/a)
}

func better(f Figure, a, b float64, ok bool) string {
	switch {
	case !ok:
		return ""
	case a == b:
		return "="
	case (b > a) == f.HigherBetter:
		return "B"
	}
	return "A"
}
