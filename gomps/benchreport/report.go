package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/metal"
)

// MaxUnexplainedShare is the most of the mean latency the library's spans
// may leave unexplained before the report flags the run.
const MaxUnexplainedShare = 0.10

// Environment is what a run needs to be reproduced and compared: how it
// was started, which build and model ran, and on what machine.
type Environment struct {
	Command   string   `json:"command"`        // the command line, shell-quoted
	EnvVars   []string `json:"env,omitempty"`  // GOMPS_* variables set, NAME=value
	Version   string   `json:"gomps_version"`  // gomps version
	Commit    string   `json:"gomps_commit"`   // gomps commit
	Modified  bool     `json:"gomps_modified"` // built from a work tree with uncommitted changes
	Go        string   `json:"go"`
	Model     string   `json:"model"`            // the name recorded in the weights file
	SHA256    string   `json:"model_sha256"`     // of the source model.safetensors
	TestModel bool     `json:"test_model"`       // the test model, not the real reranker
	Backend   string   `json:"backend"`          // from the reranker's Info
	ISA       string   `json:"isa"`              // from the reranker's Info
	Precision string   `json:"precision"`        // from the reranker's Info
	OneDNN    string   `json:"onednn,omitempty"` // oneDNN version, when the backend reports it
	CPUModel  string   `json:"cpu_model"`        // /proc/cpuinfo "model name"
	CPUs      int      `json:"cpus"`             // logical CPUs this process may use
	OS        string   `json:"os"`               // GOOS/GOARCH, distribution, kernel
}

// Report is everything the markdown report prints.
type Report struct {
	Title, Subtitle string
	Timestamp       time.Time
	Info            gomps.Info
	Env             Environment
	BatchingLine    string // how batches are cut, for the config block
	Workload        *Workload
	Runs            []RunReport
	TimeSeries      string // path of the time-series file as linked from the report ("" = none)
}

// RunReport is one configuration's figures and plot links.
type RunReport struct {
	Config  RunConfig
	Warmup  *PhaseSummary // nil without warm-up
	Measure *PhaseSummary
	Plots   Plots
}

// Plots are the SVG files of a run as linked from the report ("" = none);
// a PNG of each sits beside it.
type Plots struct{ LatencyOverTime, ThroughputOverTime, LatencyHistogram string }

// CPUUnit is the one unit of CPU use in reports, as on the dashboard: the
// process's CPU time per second of wall time, x 100 (100% = one core busy,
// N cores busy = N x 100%).
const CPUUnit = "% of one core"

// CPUUsageRow names the CPU row of the dashboard table.
const CPUUsageRow = "CPU Usage (" + CPUUnit + ")"

// Section headings, in order; tests check every one is present.
var Sections = []string{"## Summary", "## Detailed Metrics", "### Latency", "### Throughput",
	"### Latency vs Throughput Analysis", "## Overall Summary", "## Dashboard Metrics", "## Definitions"}

// WriteReport writes r as markdown: the Sections in order, every figure
// defined under "## Definitions".
func WriteReport(out io.Writer, r *Report) error {
	w := bufio.NewWriter(out)
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	info := r.Info

	p("# %s\n\n", r.Title)
	if r.Subtitle != "" {
		p("_%s_\n\n", r.Subtitle)
	}
	p("**Timestamp:** %s\n\n", r.Timestamp.Format("2006-01-02 15:04:05"))
	e := r.Env
	p("**Command:** `%s`\n\n", e.Command)
	if len(e.EnvVars) > 0 {
		p("**Environment:** `%s`\n\n", strings.Join(e.EnvVars, " "))
	}
	mod := ""
	if e.Modified {
		mod = " (modified work tree)"
	}
	p("**gomps:** %s, commit `%s`%s, %s\n\n", e.Version, e.Commit, mod, e.Go)
	model := info.Model
	if info.TestModel {
		model += " (the test model, not the real reranker)"
	}
	p("**Model:** `%s` | **sha256:** `%s`\n\n", model, orNA(info.SHA256, "not recorded in the weights file"))
	p("**Backend:** `%s` | **ISA:** `%s` | **oneDNN:** %s | **Precision:** `%s`\n\n", info.Backend, info.ISA,
		orNA(e.OneDNN, "not reported by the backend"), info.Precision)
	p("**CPU:** %s, %d logical CPUs | **OS:** %s\n\n", orNA(e.CPUModel, "unknown"), e.CPUs, orNA(e.OS, "unknown"))
	p("**Instances:** %d | **Threads:** %d (native, over all instances) | **Max length:** %d tokens\n\n",
		info.Instances, info.Threads, info.MaxLength)
	p("**Dynamic Batching:** %s\n\n", r.BatchingLine)
	p("**Workload:** %s — %s Pair lengths (query + passage words): n %d, mean %.1f, p50 %d, p90 %d, p99 %d, max %d.\n\n",
		r.Workload.Name, r.Workload.Describe, r.Workload.Words.N, r.Workload.Words.Mean, r.Workload.Words.P50,
		r.Workload.Words.P90, r.Workload.Words.P99, r.Workload.Words.Max)
	if len(r.Runs) > 0 {
		c := r.Runs[0].Config
		p("**Load:** closed loop (each caller sends its next request when its last returns); measured phase %s; warm-up %s, excluded from every figure except its own section.\n\n",
			phaseLen(c.Duration, c.Requests), phaseLen(c.Warmup, c.WarmupRequests))
	}

	for i, run := range r.Runs {
		if c := run.Measure.Contention; c.Contended() {
			p("> **Warning: the machine was contended during run %d** (batch=%d, conc=%d): other processes used %.1f%% of its CPU time "+
				"(threshold %.0f%%) and steal took %.1f%% (threshold %.0f%%). Its figures are lower than a quiet machine's; do not compare them "+
				"with a quiet run.\n\n", i+1, run.Config.PairsPerRequest, run.Config.Concurrency, 100*c.OtherShare, 100*MaxOtherCPUShare,
				100*c.StealShare, 100*MaxStealShare)
		}
	}
	p("## Summary\n\n")
	p("| Batch | Conc | Pairs | Time(s) | Lat Avg | Lat P95 | Lat P99 | TP Avg | TP P95 |\n")
	p("|-------|------|-------|---------|---------|---------|---------|--------|--------|\n")
	for _, run := range r.Runs {
		m := run.Measure
		p("| %d | %d | %d | %.2f | %.1fms | %.1fms | %.1fms | %.1f | %.1f |\n", run.Config.PairsPerRequest,
			run.Config.Concurrency, m.Pairs, m.Wall, m.Latency.Mean, m.Latency.P95, m.Latency.P99, m.TPOverall, m.TPPerRequest.P95)
	}
	p("\nBatch = pairs per request; Conc = closed-loop callers; Pairs = pairs of the measured requests (= rows the engine forwarded); " +
		"Time = measured wall time; Lat = per-request latency on the caller's clock; **TP Avg = overall throughput, Pairs / Time (pairs/s)**; " +
		"**TP P95 = 95th percentile of per-request throughput**, pairs of one request / its latency (pairs/s). The two are different quantities: " +
		"with Conc callers in flight, overall throughput is about Conc x the per-request throughput.\n\n")

	p("## Detailed Metrics\n\n")
	for i, run := range r.Runs {
		writeRun(w, i+1, run, info)
	}

	p("## Overall Summary\n\n")
	writeOverall(w, r.Runs)

	p("## Dashboard Metrics\n\n")
	for i, run := range r.Runs {
		if len(r.Runs) > 1 {
			p("### Run %d (batch=%d, conc=%d)\n\n", i+1, run.Config.PairsPerRequest, run.Config.Concurrency)
		}
		writeDashboard(w, run.Measure, info)
	}
	if r.TimeSeries != "" {
		p("Full time-series data is available in: `%s` (JSON lines, one object per interval and run; fields defined below)\n\n", r.TimeSeries)
	}
	writeDefinitions(w)
	return w.Flush()
}

// contentionLine says how busy the rest of the machine was.
func contentionLine(c Contention, cores int) string {
	if !c.Known {
		return "contention unknown (" + c.Reason + ")"
	}
	s := fmt.Sprintf("other processes used %.1f%% of the CPU time of all %d CPUs, steal %.1f%% (thresholds %.0f%% and %.0f%%)",
		100*c.OtherShare, cores, 100*c.StealShare, 100*MaxOtherCPUShare, 100*MaxStealShare)
	if c.Contended() {
		s += ": **contended**"
	}
	return s
}

// orNA returns s, or "n/a (reason)" when s is empty.
func orNA(s, reason string) string {
	if s == "" {
		return "n/a (" + reason + ")"
	}
	return s
}

func phaseLen(d time.Duration, n int) string {
	switch {
	case n > 0:
		return fmt.Sprintf("%d requests", n)
	case d > 0:
		return d.String()
	}
	return "none"
}

func writeRun(w *bufio.Writer, n int, run RunReport, info gomps.Info) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	m := run.Measure
	p("### Run %d\n\n", n)
	p("**Config:** batch=%d, conc=%d\n\n", run.Config.PairsPerRequest, run.Config.Concurrency)
	p("**Total:** %d pairs in %.2fs (%d requests)\n\n", m.Pairs, m.Wall, m.Requests)

	p("### Latency\n\n")
	p("Per request, ms, caller's clock (%d requests).\n\n", m.Latency.N)
	p("| Metric | Value |\n|--------|-------|\n")
	distRows(w, m.Latency, true)

	p("\n### Throughput\n\n")
	p("Average = overall throughput (pairs / wall time); the other rows are the per-request throughput distribution (pairs of a request / its latency), pairs/s.\n\n")
	p("| Metric | Value |\n|--------|-------|\n")
	p("| Average | %.2f |\n", m.TPOverall)
	p("| Per-request Mean | %.2f |\n", m.TPPerRequest.Mean)
	d := m.TPPerRequest
	p("| Min | %.2f |\n| Max | %.2f |\n| Std Dev | %.2f |\n", d.Min, d.Max, d.Std)
	p("| P50 | %.2f |\n| P90 | %.2f |\n| P95 | %.2f |\n| P99 | %.2f |\n", d.P50, d.P90, d.P95, d.P99)

	p("\n### Latency vs Throughput Analysis\n\n")
	p("| Latency Range | Avg Throughput | Min Throughput | Max Throughput | Count |\n")
	p("|---------------|----------------|----------------|----------------|-------|\n")
	for _, b := range m.Buckets {
		var label string
		switch {
		case math.IsInf(b.Lo, -1):
			label = fmt.Sprintf("< %.1fms (P50)", b.Hi)
		case math.IsInf(b.Hi, 1):
			label = fmt.Sprintf(">= %.1fms (P90+)", b.Lo)
		default:
			label = fmt.Sprintf("%.1f-%.1fms (%s)", b.Lo, b.Hi, b.Label)
		}
		if b.TP.N == 0 {
			p("| %s | – | – | – | 0 |\n", label)
			continue
		}
		p("| %s | %.2f | %.2f | %.2f | %d |\n", label, b.TP.Mean, b.TP.Min, b.TP.Max, b.TP.N)
	}
	p("\n**Correlation:** %s (Pearson, latency vs per-request throughput over the %d requests; negative correlation expected: lower latency = higher throughput)\n\n",
		fmtNum(m.Correlation, 3, "fewer than 2 distinct values"), m.Requests)

	p("### Reconciliation\n\n")
	p("| Identity | Figures | Holds |\n|----------|---------|-------|\n")
	e := m.Engine
	p("| Pairs = sum of batch rows | %d pairs sent = %d rows forwarded (engine Stats.Rows, %d batches) | %s |\n",
		m.Pairs, e.Rows, e.Batches, yes(uint64(m.Pairs) == e.Rows))
	p("| Requests = engine successes | %d = %d | %s |\n", m.Requests, e.Succeeded, yes(uint64(m.Requests) == e.Succeeded))
	p("| Mean latency = tokenize + queue + inference + unexplained | %.3f = %.3f + %.3f + %.3f + %.3f ms | %s |\n",
		m.Latency.Mean, m.Tokenize.Mean, m.Queue.Mean, m.Inference.Mean, m.Unexplained.Mean,
		yes(math.Abs(m.Latency.Mean-m.Tokenize.Mean-m.Queue.Mean-m.Inference.Mean-m.Unexplained.Mean) < 1e-6))
	p("| Unexplained share of mean latency <= %.0f%% | %s | %s |\n", 100*MaxUnexplainedShare,
		fmtPct(m.UnexplainedShare, 2, "no requests"), yes(m.UnexplainedShare <= MaxUnexplainedShare))
	p("| Padding waste = 1 - real/padded tokens | 1 - %d/%d = %s | %s |\n", e.RealTokens, e.PaddedTokens,
		fmtPct(e.PaddingWaste(), 2, "no batches"), yes(e.PaddedTokens >= e.RealTokens))
	p("| TP Avg = pairs / wall | %d / %.3f s = %.2f pairs/s | %s |\n", m.Pairs, m.Wall, m.TPOverall,
		yes(m.Wall > 0 && math.Abs(float64(m.Pairs)/m.Wall-m.TPOverall) < 1e-6))
	if m.CPU >= 0 {
		p("| CPU %% of one core = process CPU time / wall | %.3f s / %.3f s = %.1f%% (of %d cores: up to %d%%) | %s |\n", m.CPU.Seconds(), m.Wall,
			m.CPUPct, m.Cores, 100*m.Cores, yes(m.CPUPct >= 0))
		if m.CPU > 0 {
			p("| Pairs per CPU second = pairs / process CPU time | %d / %.3f s = %.1f | – |\n", m.Pairs, m.CPU.Seconds(),
				float64(m.Pairs)/m.CPU.Seconds())
		}
	}
	for i, b := range e.InstanceBusy {
		p("| Instance %d busy = time in forward calls / wall | %.3f s / %.3f s = %.1f%% | – |\n", i, b.Seconds(), m.Wall,
			100*b.Seconds()/m.Wall)
	}
	p("\n")

	p("### Batch sizes\n\n")
	if len(m.BatchSizes) == 0 {
		p("No forward calls.\n\n")
	} else {
		p("| Rows per batch | Batches | Share |\n|----------------|---------|-------|\n")
		for _, b := range m.BatchSizes {
			rows := fmt.Sprintf("%d-%d", b.Lo, b.Hi)
			if b.Lo == b.Hi {
				rows = fmt.Sprint(b.Lo)
			}
			if b.Hi == math.MaxInt {
				rows = fmt.Sprintf(">= %d", b.Lo)
			}
			p("| %s | %d | %.1f%% |\n", rows, b.Batches, 100*float64(b.Batches)/float64(max(e.Batches, 1)))
		}
		p("\n")
	}
	p("**Machine during the run:** %s\n\n", contentionLine(m.Contention, m.Cores))

	if wu := run.Warmup; wu != nil {
		p("### Warm-up (excluded above)\n\n")
		p("%d requests, %d pairs in %.2fs: TP Avg %.1f pairs/s, latency mean %.1f ms, P50 %.1f ms, P99 %.1f ms, max %.1f ms; %d batches, padding waste %s.\n\n",
			wu.Requests, wu.Pairs, wu.Wall, wu.TPOverall, wu.Latency.Mean, wu.Latency.P50, wu.Latency.P99, wu.Latency.Max,
			wu.Engine.Batches, fmtPct(wu.Engine.PaddingWaste(), 2, "no batches"))
	}
	pl := run.Plots
	if pl.LatencyOverTime != "" || pl.ThroughputOverTime != "" || pl.LatencyHistogram != "" {
		p("### Plots\n\n")
		for _, x := range []struct{ name, path string }{{"Latency over time", pl.LatencyOverTime},
			{"Throughput over time", pl.ThroughputOverTime}, {"Latency histogram", pl.LatencyHistogram}} {
			if x.path != "" {
				p("![%s, run %d](%s)\n\n", x.name, n, x.path)
			}
		}
	}
}

func distRows(w *bufio.Writer, d Dist, withAvg bool) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	if withAvg {
		p("| Average | %.2f |\n", d.Mean)
	}
	p("| Min | %.2f |\n| Max | %.2f |\n| Std Dev | %.2f |\n", d.Min, d.Max, d.Std)
	p("| P50 | %.2f |\n| P90 | %.2f |\n| P95 | %.2f |\n| P99 | %.2f |\n", d.P50, d.P90, d.P95, d.P99)
}

func writeOverall(w *bufio.Writer, runs []RunReport) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	if len(runs) == 0 {
		return
	}
	best, fast := runs[0], runs[0]
	var sumTP, sumLat float64
	for _, r := range runs {
		if r.Measure.TPOverall > best.Measure.TPOverall {
			best = r
		}
		if r.Measure.Latency.Mean < fast.Measure.Latency.Mean {
			fast = r
		}
		sumTP += r.Measure.TPOverall
		sumLat += r.Measure.Latency.Mean
	}
	cfg := func(r RunReport) string {
		return fmt.Sprintf("batch=%d, conc=%d", r.Config.PairsPerRequest, r.Config.Concurrency)
	}
	p("| Metric | Value | Config |\n|--------|-------|--------|\n")
	p("| Best Throughput | %.2f p/s | %s |\n", best.Measure.TPOverall, cfg(best))
	p("| Best Latency | %.2fms | %s |\n", fast.Measure.Latency.Mean, cfg(fast))
	p("| Avg Throughput | %.2f p/s | all configs |\n", sumTP/float64(len(runs)))
	p("| Avg Latency | %.2fms | all configs |\n\n", sumLat/float64(len(runs)))
	p("Throughput here is TP Avg (overall pairs/s) and latency the mean request latency; the averages are unweighted means over the %d configs.\n\n", len(runs))
}

func writeDashboard(w *bufio.Writer, m *PhaseSummary, info gomps.Info) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("| Metric | Avg | Min | Max | P50 | P95 |\n|--------|-----|-----|-----|-----|-----|\n")
	gpu := "n/a (CPU backend)"
	if info.Backend != "cpu" {
		gpu = fmt.Sprintf("n/a (not measured by the %s backend)", info.Backend)
	}
	naRow := func(name, reason string) {
		p("| %s | %s | %s | %s | %s | %s |\n", name, reason, reason, reason, reason, reason)
	}
	row := func(name string, avg float64, d Dist, digits int) {
		f := func(v float64) string { return fmt.Sprintf("%.*f", digits, v) }
		p("| %s | %s | %s | %s | %s | %s |\n", name, f(avg), f(d.Min), f(d.Max), f(d.P50), f(d.P95))
	}
	switch {
	case info.Backend == "metal" && m.GPUWindows.N > 0:
		row("GPU Memory (MB)", m.GPUWindows.Mean, m.GPUWindows, 1)
	case info.Backend == "metal" && m.GPUReason != "":
		naRow("GPU Memory (MB)", m.GPUReason)
	default:
		naRow("GPU Memory (MB)", gpu)
	}
	if info.Backend == "metal" {
		naRow("GPU Utilization (%)", metal.GPUUsage().UtilizationNA)
	} else {
		naRow("GPU Utilization (%)", gpu)
	}
	switch {
	case math.IsNaN(m.CPUPct):
		naRow(CPUUsageRow, "n/a (getrusage failed)")
	case m.CPUWindows.N == 0:
		p("| %s | %.1f | n/a (no interval) | n/a (no interval) | n/a (no interval) | n/a (no interval) |\n", CPUUsageRow, m.CPUPct)
	default:
		row(CPUUsageRow, m.CPUPct, m.CPUWindows, 1)
	}
	if m.RSSWindows.N == 0 {
		naRow("RSS (MB)", "n/a ("+m.RSSReason+")")
	} else {
		row("RSS (MB)", m.RSSWindows.Mean, m.RSSWindows, 1)
	}
	row("Tokenization (ms)", m.Tokenize.Mean, m.Tokenize, 2)
	row("Inference (ms)", m.Inference.Mean, m.Inference, 2)
	row("Queue Wait (ms)", m.Queue.Mean, m.Queue, 2)
	row("Unexplained (ms)", m.Unexplained.Mean, m.Unexplained, 3)
	switch waste := m.Engine.PaddingWaste(); {
	case math.IsNaN(waste):
		naRow("Padding Waste (%)", "n/a (no batches)")
	case m.WasteWindows.N == 0:
		p("| Padding Waste (%%) | %.1f | n/a (no interval) | n/a (no interval) | n/a (no interval) | n/a (no interval) |\n", 100*waste)
	default:
		d := m.WasteWindows
		d.Min, d.Max, d.P50, d.P95 = 100*d.Min, 100*d.Max, 100*d.P50, 100*d.P95
		row("Padding Waste (%)", 100*waste, d, 1)
	}
	hwm := "n/a (" + m.RSSReason + ")"
	if m.HWMMB >= 0 {
		hwm = fmt.Sprintf("%.1f MB", m.HWMMB)
	}
	var mean float64
	if m.Engine.Batches > 0 {
		mean = float64(m.Engine.Rows) / float64(m.Engine.Batches)
	}
	p("\nPeak RSS (VmHWM, whole process life): %s. Batches: %d, mean rows per batch %.1f, batches mixing requests: %d.\n\n",
		hwm, m.Engine.Batches, mean, m.Engine.MixedBatches)
}

func writeDefinitions(w *bufio.Writer) {
	fmt.Fprint(w, `## Definitions

- **Latency**: per request, from just before the library call to just after it returns, on the caller's clock (ms).
  Percentiles are nearest-rank over the measured requests; Std Dev is the population standard deviation.
- **TP Avg / Average throughput**: overall throughput of the measured phase, pairs of the measured requests / measured wall
  time (from the phase start until its last request returned).
- **Per-request throughput**: pairs of one request / its latency. Min, Max, Std Dev and the percentiles of the Throughput
  table and TP P95 are over this distribution; it is not the overall throughput.
- **Tokenization, Queue Wait, Inference**: the library's per-request spans, each from its own clock reads
  (gomps.Timings): tokenization from hand-off to the tokenizer pool until the pairs are assembled; queue wait from
  enqueue at the batcher until the first batch holding one of the request's pairs starts; inference from that start
  until the last such batch ends. **Unexplained** = latency - the three (admission, hand-offs, result delivery, the
  caller's own overhead); its mean must stay within 10% of the mean latency.
- **Pairs = sum of batch rows**: the engine's forwarded rows over the phase (Stats.Rows after - before) equal the pairs
  of the measured requests; the warm-up's batches are outside the phase because every warm-up call returns before it
  starts.
- **Padding waste**: 1 - real tokens / padded tokens (rows x padded length) over the phase's batches; the Avg column
  is the whole phase, Min/Max/P50/P95 are over the time-series intervals that had batches.
- **CPU usage**, in % of one core as on the dashboard: process CPU time (user + system, getrusage RUSAGE_SELF, all
  threads) / wall time x 100, so one busy core is 100% and the machine's N cores 100N%; Avg is the whole phase, the
  rest over the intervals.
- **Contention**: from /proc/stat over the measured phase, the share of all CPUs' time that other processes used
  (user + nice + system + irq + softirq, less this process's utime + stime from /proc/self/stat) and the share the
  hypervisor stole. The report warns above 10% and 5% of the machine's CPU time.
- **Batch sizes**: forward calls of the phase by their rows, from the engine's histogram (exact up to 8 rows,
  quarter-octave buckets above).
- **Pairs per CPU second**: pairs / process CPU time; on a shared machine it shows the cost of a pair when the
  wall-clock throughput is limited by other processes (OpenMP threads spinning at barriers count as CPU time).
- **RSS**: VmRSS from /proc/self/status at each interval's end; Peak RSS is VmHWM.
- **Warm-up**: a closed-loop phase before the measured one; its figures are reported only in its own section.
- **Time series** (JSON lines): run, t_s (end of the interval), window_s, requests and pairs returned in the interval,
  pairs_per_s, lat_p50/p95/p99_ms of the requests returned in it (null if none), queue_depth_pairs (engine queue at
  the interval's end), in_flight_calls, batches, rows, padding_waste, cpu_pct (% of one core), rss_mb, and partial: true for an
  interval shorter than 90% of the sampling interval (a phase's last, cut short when it ends), whose rates swing
  with its length: the plots and the per-interval Min/Max/P50/P95 leave it out.
`)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**NO**"
}

func fmtNum(v float64, digits int, reason string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a (" + reason + ")"
	}
	return fmt.Sprintf("%.*f", digits, v)
}

func fmtPct(v float64, digits int, reason string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a (" + reason + ")"
	}
	return fmt.Sprintf("%.*f%%", digits, 100*v)
}

// BatchingLine describes the batcher for the config block.
func BatchingLine(info gomps.Info, timeout time.Duration) string {
	if strings.EqualFold(info.Batcher, "fixed") {
		return fmt.Sprintf("enabled, fixed (max_batch=%d, timeout=%.1fms)", info.MaxBatch, float64(timeout)/1e6)
	}
	return fmt.Sprintf("enabled, %s (max_batch=%d, length-grouped under a padded-token budget, dispatched when an instance is idle, no timer)",
		info.Batcher, info.MaxBatch)
}
