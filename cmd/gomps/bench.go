package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"gonum.org/v1/plot"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/benchreport"
	"github.com/gomps/gomps/gomps/dashboard"
	"github.com/gomps/gomps/gomps/pairio"
)

func init() { register(newBenchCommand()) }

// benchSyntheticRequests is how many distinct requests the built-in
// synthetic workload holds (cycled).
const benchSyntheticRequests = 256

// The library's default fixed batcher timeout and routing (WithBatchTimeout,
// WithRouting), the flags' defaults.
const (
	benchDefaultTimeout = 100 * time.Millisecond
	benchDefaultRouting = "least-loaded"
)

// newBenchCommand builds the bench command; tests build fresh ones because
// urfave/cli flags keep state between runs.
func newBenchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "benchmark the reranker under closed-loop load and write the report",
		UsageText: "gomps bench [--model M] [--workload FILE] [--batch-sizes 64] [--concurrency 32] [--duration 60s | --requests N] [--output report.md]\n   gomps bench --compare A.json B.json",
		Description: `Runs a sweep of (pairs per request, concurrency) configurations. In each, --concurrency
callers run a closed loop: each sends its next request (one query with --batch-sizes
passages) as soon as its last returns. A warm-up phase (--warmup or --warmup-requests)
runs first and is reported on its own; the measured phase then runs for --duration, or
until --requests requests are issued, and every request in flight is awaited.

Requests come from --workload (a TSV or JSONL pairs file, for example
../shared/data/trec-dl/rerank.dl19.bm25-top100.jsonl: one query per request with its own
passages), or, without it, a built-in synthetic workload whose query and passage word
counts follow the TREC DL distribution of shared/data/SOURCES.md.

Writes the report (markdown, --output: a summary table, then per run latency, throughput
and latency-vs-throughput tables, an overall summary and the dashboard's figures), with
every figure defined in it, a time series (JSON lines, --timeseries) and plots
(--plots-dir; SVG linked from the report, PNG beside each) drawn with gonum.org/v1/plot,
and the results (JSON, --results: how the run was made and each configuration's headline
figures). Prints the summary table on stdout.

--compare A.json B.json prints two results files side by side: what differs in how they
were made (build, model, backend, machine, command), then for each configuration in both
every figure of A and B, the ratio B/A, and which is better; it loads no model.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "native file, Hugging Face model dir or model id (default: as gomps score)", EnvVars: []string{"GOMPS_MODEL"}},
			trustUnverifiedFlag(),
			&cli.StringFlag{Name: "workload", Usage: "pairs file (TSV or JSONL); empty = the built-in synthetic workload", EnvVars: []string{"GOMPS_WORKLOAD"}, TakesFile: true},
			&cli.StringFlag{Name: "batch-sizes", Usage: "pairs per request, a comma-separated list", Value: "64", EnvVars: []string{"GOMPS_BATCH_SIZES"}},
			&cli.StringFlag{Name: "concurrency", Usage: "closed-loop callers, a comma-separated list", Value: "32", EnvVars: []string{"GOMPS_CONCURRENCY"}},
			&cli.DurationFlag{Name: "duration", Usage: "measured phase length of each configuration", Value: 60 * time.Second, EnvVars: []string{"GOMPS_DURATION"}},
			&cli.IntFlag{Name: "requests", Usage: "measured requests per configuration (overrides --duration; 0 = use --duration)", EnvVars: []string{"GOMPS_REQUESTS"}},
			&cli.DurationFlag{Name: "warmup", Usage: "warm-up length before each configuration (0 = none)", Value: 5 * time.Second, EnvVars: []string{"GOMPS_WARMUP"}},
			&cli.IntFlag{Name: "warmup-requests", Usage: "warm-up requests (overrides --warmup; 0 = use --warmup)", EnvVars: []string{"GOMPS_WARMUP_REQUESTS"}},
			&cli.DurationFlag{Name: "sample-interval", Usage: "time-series interval", Value: time.Second, EnvVars: []string{"GOMPS_SAMPLE_INTERVAL"}},
			&cli.StringFlag{Name: "precision", Usage: precisionUsage, Value: "f32", EnvVars: []string{"GOMPS_PRECISION"}},
			&cli.IntFlag{Name: "instances", Usage: "model instances running at once (0 = the backend's default: on the CPU one per thread, up to 4)", EnvVars: []string{"GOMPS_INSTANCES"}},
			&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"GOMPS_THREADS"}},
			&cli.IntFlag{Name: "max-length", Usage: "tokens per pair incl. specials (0 = the model's maximum)", EnvVars: []string{"GOMPS_MAX_LENGTH"}},
			&cli.StringFlag{Name: "batcher", Usage: "adaptive or fixed", Value: "adaptive", EnvVars: []string{"GOMPS_BATCHER"}},
			&cli.IntFlag{Name: "max-batch", Usage: "pairs per forward pass (0 = the batcher's default)", EnvVars: []string{"GOMPS_MAX_BATCH"}},
			&cli.DurationFlag{Name: "batch-timeout", Usage: "fixed batcher: longest a partial batch collects pairs before it is sent", Value: benchDefaultTimeout, EnvVars: []string{"GOMPS_BATCH_TIMEOUT"}},
			&cli.StringFlag{Name: "routing", Usage: "which instance gets a batch: least-loaded or round-robin (instances in turn, busy or not)", Value: benchDefaultRouting, EnvVars: []string{"GOMPS_ROUTING"}},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report file (markdown)", Value: "report.md", EnvVars: []string{"GOMPS_OUTPUT"}, TakesFile: true},
			&cli.StringFlag{Name: "dashboard", Usage: "serve the live dashboard on host:port during the run (empty = none)", EnvVars: []string{"GOMPS_DASHBOARD"}},
			&cli.StringFlag{Name: "timeseries", Usage: "time-series file, JSON lines (default: <output>-timeseries.jsonl; - = none)", EnvVars: []string{"GOMPS_TIMESERIES"}, TakesFile: true},
			&cli.StringFlag{Name: "results", Usage: "results file, JSON, for --compare (default: <output>.json; - = none)", EnvVars: []string{"GOMPS_RESULTS"}, TakesFile: true},
			&cli.BoolFlag{Name: "compare", Usage: "compare two results files given as arguments (A.json B.json) instead of running", EnvVars: []string{"GOMPS_COMPARE"}},
			&cli.StringFlag{Name: "plots-dir", Usage: "directory for the plots, SVG and PNG (default: <output>-plots; - = none)", EnvVars: []string{"GOMPS_PLOTS_DIR"}, TakesFile: true},
			&cli.StringFlag{Name: "title", Usage: "report title (default: from the configuration)", EnvVars: []string{"GOMPS_TITLE"}},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the synthetic workload", Value: 1, EnvVars: []string{"GOMPS_SEED"}},
		},
		Action: benchAction,
	}
}

// parseIntList parses "64" or "32,64" (errors name the flag, not the command).
func parseIntList(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--%s: %q is not a positive integer", flag, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s is empty", flag)
	}
	return out, nil
}

// benchOptions turns the flags into library options.
func benchOptions(c *cli.Context) ([]gomps.Option, error) {
	opts := []gomps.Option{
		gomps.WithNotices(c.App.ErrWriter),
		gomps.WithPrecision(c.String("precision")),
		gomps.WithBatcher(c.String("batcher")),
		gomps.WithRouting(c.String("routing")),
		gomps.WithBatchTimeout(c.Duration("batch-timeout")),
	}
	opts, err := appendIntOptions(opts, c, engineIntOptions)
	if err != nil {
		return nil, err
	}
	return withTrust(c, opts), nil
}

// benchFiles are the files a bench run writes; "" = not written (only the
// report is always written).
type benchFiles struct {
	report, series, plots, results string
}

// benchPaths derives the time-series file, the plots directory and the
// results file from --output.
func benchPaths(c *cli.Context) benchFiles {
	report := c.String("output")
	base := strings.TrimSuffix(report, filepath.Ext(report))
	pick := func(flag, derived string) string {
		switch v := c.String(flag); v {
		case "":
			return derived
		case "-":
			return ""
		default:
			return v
		}
	}
	return benchFiles{report: report, series: pick("timeseries", base+"-timeseries.jsonl"),
		plots: pick("plots-dir", base+"-plots"), results: pick("results", base+".json")}
}

// benchCompare prints two results files side by side.
func benchCompare(c *cli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("--compare takes two results files (A.json B.json), got %d arguments", c.NArg())
	}
	var res [2]benchreport.Results
	for i := range res {
		var err error
		if res[i], err = benchreport.ReadResults(c.Args().Get(i)); err != nil {
			return err
		}
	}
	return benchreport.Compare(c.App.Writer, c.Args().Get(0), c.Args().Get(1), res[0], res[1])
}

// benchAction runs the sweep: flags and workloads are checked before the
// model loads (parseBenchFlags), every configuration runs in turn
// (runBenchSweep), then the files are written (writeBenchFiles) and the
// summary printed (printBenchSummary).
func benchAction(c *cli.Context) error {
	if c.Bool("compare") {
		return benchCompare(c)
	}
	setup, err := parseBenchFlags(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := gomps.Open(ctx, c.String("model"), setup.opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	if addr := c.String("dashboard"); addr != "" {
		d, err := dashboard.Start(addr, r, readVersion().Version)
		if err != nil {
			return fmt.Errorf("--dashboard: %w", err)
		}
		defer d.Close() // runs before r.Close
		fmt.Fprintf(c.App.ErrWriter, "bench: dashboard at %s\n", d.URL)
	}
	rep := newBenchReport(c, r.Info(), setup.workloads[setup.sizes[0]])
	series, phases, err := runBenchSweep(ctx, c, r, rep, setup)
	if err != nil {
		return err
	}
	if err := writeBenchFiles(rep, series, phases, setup.files); err != nil {
		return err
	}
	printBenchSummary(c.App.Writer, c.App.ErrWriter, rep, setup.files)
	return benchUnexplained(rep)
}

// benchSetup is what bench's flags ask for, checked before the model loads.
type benchSetup struct {
	sizes, concs []int // pairs per request, closed-loop callers
	opts         []gomps.Option
	files        benchFiles
	workloads    map[int]*benchreport.Workload // by pairs per request
}

// parseBenchFlags checks the arguments and flags and loads the workloads,
// so that a bad flag or file fails before the model loads.
func parseBenchFlags(c *cli.Context) (*benchSetup, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	s := &benchSetup{}
	var err error
	if s.sizes, err = parseIntList("batch-sizes", c.String("batch-sizes")); err != nil {
		return nil, err
	}
	if s.concs, err = parseIntList("concurrency", c.String("concurrency")); err != nil {
		return nil, err
	}
	if err := checkBenchPhases(c); err != nil {
		return nil, err
	}
	s.files = benchPaths(c)
	if s.files.report == "" || s.files.report == "-" {
		return nil, errors.New("--output must name a file (the report links files beside it)")
	}
	if s.opts, err = benchOptions(c); err != nil {
		return nil, err
	}
	if s.workloads, err = loadBenchWorkloads(c, s.sizes); err != nil {
		return nil, err
	}
	return s, nil
}

// checkBenchPhases checks the flags that bound the warm-up and measured
// phases and the sampling.
func checkBenchPhases(c *cli.Context) error {
	for _, f := range []string{"requests", "warmup-requests"} {
		if c.Int(f) < 0 {
			return fmt.Errorf("--%s %d is negative", f, c.Int(f))
		}
	}
	if c.Int("requests") == 0 && c.Duration("duration") <= 0 {
		return errors.New("--duration must be positive when --requests is 0")
	}
	if c.Duration("warmup") < 0 || c.Duration("sample-interval") <= 0 {
		return errors.New("--warmup must not be negative and --sample-interval must be positive")
	}
	return nil
}

// loadBenchWorkloads returns a workload per request size: from --workload,
// else the synthetic one.
func loadBenchWorkloads(c *cli.Context, sizes []int) (map[int]*benchreport.Workload, error) {
	workloads := map[int]*benchreport.Workload{}
	for _, n := range sizes {
		var wl *benchreport.Workload
		var err error
		if f := c.String("workload"); f != "" {
			wl, err = benchreport.LoadWorkload(f, n)
		} else {
			wl, err = benchreport.Synthetic(n, benchSyntheticRequests, c.Uint64("seed"))
		}
		if err != nil {
			return nil, err
		}
		workloads[n] = wl
	}
	return workloads, nil
}

// newBenchReport starts the report: environment, configuration and title.
func newBenchReport(c *cli.Context, info gomps.Info, wl *benchreport.Workload) *benchreport.Report {
	rep := &benchreport.Report{
		Timestamp:    time.Now(),
		Info:         info,
		Env:          benchEnvironment(c, info),
		BatchingLine: benchreport.BatchingLine(info, info.BatchWait),
		Workload:     wl,
		Title:        c.String("title"),
	}
	if rep.Title == "" {
		rep.Title = fmt.Sprintf("%s Pool (%dx %s) + %s Batching", strings.ToUpper(info.Backend), info.Instances,
			info.Backend, titleCase(info.Batcher))
	}
	rep.Subtitle = fmt.Sprintf("%d %s instance(s), %d native thread(s) each, %s routing, %s batching, %s precision",
		info.Instances, info.Backend, max(1, info.Threads/max(1, info.Instances)), info.Routing, info.Batcher, info.Precision)
	return rep
}

// runBenchSweep runs every (pairs per request, concurrency) configuration in
// turn, appending each run to rep; it returns the time series of all
// measured phases and each run's measured phase.
func runBenchSweep(ctx context.Context, c *cli.Context, r *gomps.Reranker, rep *benchreport.Report, setup *benchSetup) ([]benchreport.Point, []*benchreport.Phase, error) {
	var next atomic.Int64
	var series []benchreport.Point
	var phases []*benchreport.Phase
	for _, n := range setup.sizes {
		for _, conc := range setup.concs {
			cfg := benchRunConfig(c, n, conc)
			fmt.Fprintf(c.App.ErrWriter, "bench: batch=%d conc=%d ...\n", n, conc)
			res, err := benchreport.Run(ctx, r, setup.workloads[n], cfg, &next)
			if err != nil {
				return nil, nil, fmt.Errorf("batch=%d conc=%d: %w", n, conc, err)
			}
			run := benchreport.RunReport{Config: cfg, Measure: benchreport.Summarize(res.Measure, len(rep.Runs)+1)}
			if res.Warmup != nil {
				run.Warmup = benchreport.Summarize(res.Warmup, len(rep.Runs)+1)
			}
			series = append(series, run.Measure.Series...)
			rep.Runs = append(rep.Runs, run)
			phases = append(phases, res.Measure)
		}
	}
	return series, phases, nil
}

// benchRunConfig is one configuration's run settings from the flags, with
// progress on stderr at most every 10 seconds.
func benchRunConfig(c *cli.Context, n, conc int) benchreport.RunConfig {
	cfg := benchreport.RunConfig{PairsPerRequest: n, Concurrency: conc, Duration: c.Duration("duration"),
		Requests: c.Int("requests"), Warmup: c.Duration("warmup"), WarmupRequests: c.Int("warmup-requests"),
		SampleEvery: c.Duration("sample-interval")}
	var last time.Time
	cfg.Progress = func(phase string, elapsed time.Duration, done int) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(c.App.ErrWriter, "bench: batch=%d conc=%d: %s %s, %d requests returned\n", n, conc, phase,
				elapsed.Round(time.Second), done)
		}
	}
	return cfg
}

// writeBenchFiles writes the plots, the time series, the report and the
// results; the report links the plots and the series relative to itself.
func writeBenchFiles(rep *benchreport.Report, series []benchreport.Point, phases []*benchreport.Phase, files benchFiles) error {
	reportDir := filepath.Dir(files.report)
	if files.plots != "" {
		if err := writeBenchPlots(rep, phases, files.plots, reportDir); err != nil {
			return err
		}
	}
	if files.series != "" {
		if err := writeFileAtomic(files.series, func(w *bufio.Writer) error { return benchreport.WriteTimeSeries(w, series) }); err != nil {
			return err
		}
		rep.TimeSeries = relPath(reportDir, files.series)
	}
	if err := writeFileAtomic(files.report, func(w *bufio.Writer) error { return benchreport.WriteReport(w, rep) }); err != nil {
		return err
	}
	if files.results != "" {
		return writeFileAtomic(files.results, func(w *bufio.Writer) error {
			return benchreport.WriteResults(w, benchreport.ResultsOf(rep))
		})
	}
	return nil
}

// relPath is p relative to dir, with forward slashes (p itself when it has
// no relative form).
func relPath(dir, p string) string {
	if r, err := filepath.Rel(dir, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

// writeBenchPlots draws each run's latency and throughput over time and its
// latency histogram into dir, in every benchreport.PlotFormats, and records
// the SVGs' paths (relative to reportDir) in the run.
func writeBenchPlots(rep *benchreport.Report, phases []*benchreport.Phase, dir, reportDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range rep.Runs {
		run := &rep.Runs[i]
		tag := fmt.Sprintf("run %d: batch=%d, conc=%d", i+1, run.Config.PairsPerRequest, run.Config.Concurrency)
		lat, err := benchreport.LatencyOverTime("Latency over time ("+tag+")", run.Measure.Series)
		if err != nil {
			return err
		}
		tp, err := benchreport.ThroughputOverTime("Throughput over time ("+tag+")", run.Measure.Series)
		if err != nil {
			return err
		}
		hist, err := benchreport.Histogram("Latency histogram ("+tag+")", "latency (ms)", benchreport.Latencies(phases[i]), 40)
		if err != nil {
			return err
		}
		paths := map[string]string{}
		for kind, p := range map[string]*plot.Plot{"latency-over-time": lat, "throughput-over-time": tp, "latency-histogram": hist} {
			for _, format := range benchreport.PlotFormats {
				path := filepath.Join(dir, fmt.Sprintf("run%d-%s.%s", i+1, kind, format))
				if err := writeFileAtomic(path, func(w *bufio.Writer) error { return benchreport.WritePlot(w, p, format) }); err != nil {
					return err
				}
				if format == "svg" {
					paths[kind] = relPath(reportDir, path)
				}
			}
		}
		run.Plots = benchreport.Plots{LatencyOverTime: paths["latency-over-time"], ThroughputOverTime: paths["throughput-over-time"],
			LatencyHistogram: paths["latency-histogram"]}
	}
	return nil
}

// printBenchSummary warns on stderr of each run on a contended machine, then
// prints the summary table and the files written on out.
func printBenchSummary(out, errOut io.Writer, rep *benchreport.Report, files benchFiles) {
	for i, run := range rep.Runs {
		if run.Measure.Contention.Contended() {
			fmt.Fprintf(errOut, "bench: warning: run %d: the machine was contended (other processes %.1f%% of its CPU time, steal %.1f%%); the report says so\n",
				i+1, 100*run.Measure.Contention.OtherShare, 100*run.Measure.Contention.StealShare)
		}
	}
	fmt.Fprintln(out, "| Batch | Conc | Pairs | Time(s) | Lat Avg | Lat P95 | Lat P99 | TP Avg | TP P95 | Unexplained |")
	for _, run := range rep.Runs {
		m := run.Measure
		fmt.Fprintf(out, "| %d | %d | %d | %.2f | %.1fms | %.1fms | %.1fms | %.1f | %.1f | %.1f%% |\n", run.Config.PairsPerRequest,
			run.Config.Concurrency, m.Pairs, m.Wall, m.Latency.Mean, m.Latency.P95, m.Latency.P99, m.TPOverall,
			m.TPPerRequest.P95, 100*m.UnexplainedShare)
	}
	fmt.Fprintf(out, "report: %s\n", files.report)
	if files.results != "" {
		fmt.Fprintf(out, "results: %s (gomps bench --compare A.json B.json)\n", files.results)
	}
}

// benchUnexplained fails a run whose mean latency the library's timings
// leave more than benchreport.MaxUnexplainedShare unexplained, unless the
// machine was contended during it: then other processes explain the gap (the
// callers waited for a CPU between the library's spans), and the report and
// printBenchSummary's warning say so instead.
func benchUnexplained(rep *benchreport.Report) error {
	for _, run := range rep.Runs {
		if run.Measure.UnexplainedShare > benchreport.MaxUnexplainedShare && !run.Measure.Contention.Contended() {
			return fmt.Errorf("batch=%d conc=%d: %.1f%% of the mean latency is unexplained by the library's timings (limit %.0f%%); the report says so",
				run.Config.PairsPerRequest, run.Config.Concurrency, 100*run.Measure.UnexplainedShare, 100*benchreport.MaxUnexplainedShare)
		}
	}
	return nil
}

// writeFileAtomic writes path through a temporary file renamed into place.
func writeFileAtomic(path string, fill func(*bufio.Writer) error) error {
	f, err := pairio.CreateAtomic(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Abort()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Abort()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	return nil
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// benchEnvironment records how this run was started and what it runs on;
// the backend, ISA and precision come from the reranker's Info.
func benchEnvironment(c *cli.Context, info gomps.Info) benchreport.Environment {
	v := readVersion()
	e := benchreport.Environment{
		Command: commandLine(c), Version: v.Version, Commit: v.Commit, Modified: v.Modified, Go: v.Go,
		Model: info.Model, SHA256: info.SHA256, TestModel: info.TestModel,
		Backend: info.Backend, ISA: info.ISA, Precision: info.Precision,
		CPUModel: cpuModel(), CPUs: runtime.NumCPU(), OS: osDescription(),
	}
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "GOMPS_") {
			continue
		}
		value = shellQuote(value)
		if secretName.MatchString(name) {
			value = "<redacted>"
		}
		e.EnvVars = append(e.EnvVars, name+"="+value)
	}
	sort.Strings(e.EnvVars)
	return e
}

// secretName matches the names of variables whose values a report must not
// print.
var secretName = regexp.MustCompile(`(?i)KEY|TOKEN|SECRET|PASSWORD`)

// commandLine is the command as typed: the app name and the arguments the
// root command passed on (the command's name and everything after it), each
// shell-quoted.
func commandLine(c *cli.Context) string {
	args := []string{c.Command.Name}
	for _, l := range c.Lineage()[1:] {
		if a := l.Args(); a.First() == c.Command.Name {
			args = a.Slice()
			break
		}
	}
	parts := []string{c.App.Name}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// osDescription is GOOS/GOARCH, the distribution's PRETTY_NAME and the
// kernel release, as far as they can be read.
func osDescription() string {
	parts := []string{runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				parts = append(parts, strings.Trim(v, `"`))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		parts = append(parts, "kernel "+strings.TrimSpace(string(b)))
	}
	return strings.Join(parts, ", ")
}

// cpuModel is the first "model name" of /proc/cpuinfo ("" elsewhere).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
