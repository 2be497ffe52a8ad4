package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps/benchreport"
	"github.com/gomps/gomps/gomps/gompstest"
)

// runBenchCLI runs a gomps app with a fresh bench command.
func runBenchCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runApp(t, []*cli.Command{newBenchCommand()}, append([]string{"bench"}, args...)...)
}

// tinyDir is the tiny Hugging Face model directory the library opens.
func tinyDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "gomps", "testdata", "tiny"))
	require.NoError(t, err)
	return dir
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "ms"), "%"), 64)
	require.NoError(t, err, "number %q", s)
	return v
}

// tableValue returns the value column of "| name | value |" in the section
// starting at heading.
func tableValue(t *testing.T, report, heading, name string) float64 {
	t.Helper()
	i := strings.Index(report, heading)
	require.GreaterOrEqual(t, i, 0, "heading %q", heading)
	m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(name) + ` \| ([^|]+) \|`).FindStringSubmatch(report[i:])
	require.NotNil(t, m, "row %q under %q", name, heading)
	return mustFloat(t, m[1])
}

// TestBench200Pairs runs bench on 200 pairs with the real-shape test model and checks
// the report's identities, the time series and the plots.
func TestBench200Pairs(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "report.md")
	t.Setenv("GOMPS_API_KEY", "s3cret")
	t.Setenv("GOMPS_BENCH_NOTE", "two words")
	stdout, stderr, err := runBenchCLI(t, "--model", gompstest.TestModel(t), "--batch-sizes", "8", "--concurrency", "4",
		"--requests", "25", "--warmup-requests", "3", "--sample-interval", "20ms", "--output", report)
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Contains(t, stdout, "| 8 | 4 | 200 |", "summary on stdout")

	b, err := os.ReadFile(report)
	require.NoError(t, err)
	rep := string(b)
	last := -1
	for _, s := range benchreport.Sections {
		i := strings.Index(rep, "\n"+s+"\n")
		require.GreaterOrEqual(t, i, 0, "section %q", s)
		assert.Greater(t, i, last, "section %q in order", s)
		last = i
	}
	assert.True(t, strings.HasPrefix(rep, "# "), "title first")
	for _, s := range []string{"**Timestamp:**", "**Model:**", "**Backend:** `cpu`", "**Dynamic Batching:**", benchreport.SyntheticName} {
		assert.Contains(t, rep, s, "config block")
	}
	// What it takes to reproduce the run: command, environment, build, model, machine.
	assert.Contains(t, rep, "**Command:** `gomps bench --model "+gompstest.TestModel(t)+" --batch-sizes 8 --concurrency 4 --requests 25 --warmup-requests 3 --sample-interval 20ms --output "+report+"`")
	assert.Contains(t, rep, "**Environment:** `GOMPS_API_KEY=<redacted> GOMPS_BENCH_NOTE='two words'`", "GOMPS_* variables, secrets redacted")
	assert.Regexp(t, "(?m)^\\*\\*gomps:\\*\\* "+regexp.QuoteMeta(readVersion().Version)+", commit `[^`]+`.*, go1\\.", rep)
	assert.Regexp(t, "(?m)^\\*\\*Model:\\*\\* `gomps-test/minilm-l6-seeded-head` \\| \\*\\*sha256:\\*\\* `[0-9a-f]{64}`$", rep)
	assert.Regexp(t, "(?m)^\\*\\*Backend:\\*\\* `cpu` \\| \\*\\*ISA:\\*\\* `[a-z0-9_]+` \\| \\*\\*oneDNN:\\*\\* .+ \\| \\*\\*Precision:\\*\\* `f32`$", rep)
	assert.Regexp(t, "(?m)^\\*\\*CPU:\\*\\* .+, "+strconv.Itoa(runtime.NumCPU())+" logical CPUs \\| \\*\\*OS:\\*\\* "+runtime.GOOS+"/"+runtime.GOARCH, rep)
	assert.Regexp(t, "(?m)^\\*\\*Machine during the run:\\*\\* other processes used [\\d.]+% of the CPU time of all \\d+ CPUs, steal [\\d.]+% \\(thresholds 10% and 5%\\)", rep)

	// Batch sizes: the table's batches add up to the engine's.
	bs := 0
	for _, m := range regexp.MustCompile(`(?m)^\| (?:\d+|\d+-\d+|>= \d+) \| (\d+) \| [\d.]+% \|$`).FindAllStringSubmatch(rep, -1) {
		n, _ := strconv.Atoi(m[1])
		bs += n
	}

	// Summary row: Batch | Conc | Pairs | Time(s) | Lat Avg | Lat P95 | Lat P99 | TP Avg | TP P95
	m := regexp.MustCompile(`(?m)^\| 8 \| 4 \| (\d+) \| ([\d.]+) \| ([\d.]+)ms \| ([\d.]+)ms \| ([\d.]+)ms \| ([\d.]+) \| ([\d.]+) \|$`).FindStringSubmatch(rep)
	require.NotNil(t, m, "summary row")
	pairs, wall, tpAvg := mustFloat(t, m[1]), mustFloat(t, m[2]), mustFloat(t, m[6])
	assert.Equal(t, 200.0, pairs, "pairs = 25 requests x 8")
	assert.InDelta(t, pairs/wall, tpAvg, pairs/(wall-0.005)-pairs/wall+0.05, "TP Avg = pairs / time (Time printed to 0.01 s)")
	tpRow := regexp.MustCompile(`\| (\d+) / ([\d.]+) s = ([\d.]+) pairs/s \|`).FindStringSubmatch(rep)
	require.NotNil(t, tpRow, "TP identity row")
	// The row prints the wall time rounded; allow for that rounding (half a
	// unit of its last printed digit) plus the rate's own 2-decimal rounding.
	rowPairs, rowWall := mustFloat(t, tpRow[1]), mustFloat(t, tpRow[2])
	half := 0.5
	if i := strings.IndexByte(tpRow[2], '.'); i >= 0 {
		half = 0.5 * math.Pow(10, -float64(len(tpRow[2])-i-1))
	}
	assert.InDelta(t, rowPairs/rowWall, mustFloat(t, tpRow[3]), rowPairs/(rowWall-half)-rowPairs/rowWall+0.01)
	assert.InDelta(t, mustFloat(t, tpRow[3]), tpAvg, 0.051, "summary TP Avg = identity row")

	// Sum of batch rows = pairs, from the engine's Stats.
	rows := regexp.MustCompile(`(\d+) pairs sent = (\d+) rows forwarded \(engine Stats.Rows, (\d+) batches\)`).FindStringSubmatch(rep)
	require.NotNil(t, rows, "rows identity")
	assert.Equal(t, "200", rows[1])
	assert.Equal(t, "200", rows[2], "sum of batch rows")
	nb, _ := strconv.Atoi(rows[3])
	assert.Equal(t, nb, bs, "the batch-size histogram holds every batch")
	assert.GreaterOrEqual(t, nb, 25/4, "batches: at most 4 requests' pairs per batch of 32 rows max")
	assert.NotContains(t, rep, "**NO**", "every identity holds")

	// Unexplained share of the mean latency.
	u := regexp.MustCompile(`\| Unexplained share of mean latency <= 10% \| ([\d.]+)% \|`).FindStringSubmatch(rep)
	require.NotNil(t, u)
	share := mustFloat(t, u[1])
	assert.LessOrEqual(t, share, 10.0, "unexplained share")
	assert.GreaterOrEqual(t, share, 0.0)
	dec := regexp.MustCompile(`\| ([\d.]+) = ([\d.]+) \+ ([\d.]+) \+ ([\d.]+) \+ (-?[\d.]+) ms \|`).FindStringSubmatch(rep)
	require.NotNil(t, dec, "latency decomposition")
	latMean := mustFloat(t, dec[1])
	assert.InDelta(t, latMean, mustFloat(t, dec[2])+mustFloat(t, dec[3])+mustFloat(t, dec[4])+mustFloat(t, dec[5]), 0.01)
	assert.InDelta(t, 100*mustFloat(t, dec[5])/latMean, share, 0.02, "share = unexplained / latency")
	assert.Greater(t, mustFloat(t, dec[4]), 0.0, "inference measured")

	// Percentiles ordered.
	var prev float64
	for _, name := range []string{"Min", "P50", "P90", "P95", "P99", "Max"} {
		v := tableValue(t, rep, "### Latency\n", name)
		assert.GreaterOrEqual(t, v, prev, "latency %s ordered", name)
		prev = v
	}
	assert.InDelta(t, latMean, tableValue(t, rep, "### Latency\n", "Average"), 0.01, "latency mean agrees")
	assert.InDelta(t, tpAvg, tableValue(t, rep, "### Throughput\n", "Average"), 0.1, "throughput Average = TP Avg")
	prev = 0
	for _, name := range []string{"Min", "P50", "P90", "P95", "P99", "Max"} {
		v := tableValue(t, rep, "### Throughput\n", name)
		assert.GreaterOrEqual(t, v, prev, "throughput %s ordered", name)
		prev = v
	}

	// Latency-vs-throughput buckets hold every request once; correlation in [-1, 1].
	count := 0
	for _, m := range regexp.MustCompile(`(?m)^\| (?:<|>=|[\d.]+-)[^|]*ms \((?:P50|P50-P75|P75-P90|P90\+)\) \|.* \| (\d+) \|$`).FindAllStringSubmatch(rep, -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		count += n
	}
	assert.Equal(t, 25, count, "bucket counts add up to the requests")
	corr := regexp.MustCompile(`\*\*Correlation:\*\* (-?[\d.]+) `).FindStringSubmatch(rep)
	require.NotNil(t, corr, "correlation printed")
	assert.InDelta(t, 0, mustFloat(t, corr[1]), 1.0, "correlation in [-1, 1]")

	// Padding waste = 1 - real/padded.
	w := regexp.MustCompile(`1 - (\d+)/(\d+) = ([\d.]+)%`).FindStringSubmatch(rep)
	require.NotNil(t, w, "padding waste")
	real, padded := mustFloat(t, w[1]), mustFloat(t, w[2])
	assert.Greater(t, real, 200.0*3, "real tokens: at least [CLS] q [SEP] p [SEP] per pair")
	assert.GreaterOrEqual(t, padded, real)
	assert.InDelta(t, 100*(1-real/padded), mustFloat(t, w[3]), 0.006)
	dashWaste := regexp.MustCompile(`(?m)^\| Padding Waste \(%\) \| ([\d.]+) \|`).FindStringSubmatch(rep)
	require.NotNil(t, dashWaste)
	assert.InDelta(t, 100*(1-real/padded), mustFloat(t, dashWaste[1]), 0.06, "dashboard waste = 1 - real/padded")

	// Dashboard: GPU rows n/a with a reason, CPU and RSS measured.
	assert.Regexp(t, `(?m)^\| GPU Memory \(MB\) \| n/a \(CPU backend\) \|`, rep)
	assert.Regexp(t, `(?m)^\| GPU Utilization \(%\) \| n/a \(CPU backend\) \|`, rep)
	cpu := regexp.MustCompile(`(?m)^\| CPU Usage \(% of one core\) \| ([\d.]+) \|`).FindStringSubmatch(rep)
	require.NotNil(t, cpu)
	assert.Greater(t, mustFloat(t, cpu[1]), 0.0, "CPU %")
	assert.LessOrEqual(t, mustFloat(t, cpu[1]), 100.0*float64(runtime.NumCPU())+1, "CPU % of one core: up to 100 x cores")
	rss := regexp.MustCompile(`(?m)^\| RSS \(MB\) \| ([\d.]+) \|`).FindStringSubmatch(rep)
	require.NotNil(t, rss)
	assert.Greater(t, mustFloat(t, rss[1]), 1.0, "RSS from the OS")
	assert.Contains(t, rep, "### Warm-up (excluded above)\n\n3 requests, 24 pairs", "warm-up reported on its own")

	// Time series: valid JSON lines whose pairs add up to the run's.
	f, err := os.Open(filepath.Join(dir, "report-timeseries.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sum, lines := 0, 0
	for sc.Scan() {
		var pt benchreport.Point
		require.NoError(t, json.Unmarshal(sc.Bytes(), &pt), "line %d", lines+1)
		sum += pt.Pairs
		lines++
		assert.Equal(t, 1, pt.Run)
		assert.Greater(t, pt.Window, 0.0)
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, 200, sum, "time-series pairs add up")
	assert.Greater(t, lines, 0)
	assert.Contains(t, rep, "`report-timeseries.jsonl`", "time series linked")

	// Results: readable, and --compare sets them side by side with ratios.
	results := filepath.Join(dir, "report.json")
	assert.Contains(t, stdout, "results: "+results)
	resA, err := benchreport.ReadResults(results)
	require.NoError(t, err)
	require.Len(t, resA.Runs, 1)
	assert.Equal(t, mustFloat(t, m[6]), math.Round(10*resA.Runs[0].Figures["tp_avg"])/10, "the report's TP Avg")
	resB := resA
	resB.Runs = []benchreport.RunFigures{{PairsPerRequest: 8, Concurrency: 4, Figures: map[string]float64{}}}
	for k, v := range resA.Runs[0].Figures {
		resB.Runs[0].Figures[k] = v
	}
	resB.Runs[0].Figures["tp_avg"] *= 2
	var bb bytes.Buffer
	require.NoError(t, benchreport.WriteResults(&bb, resB))
	bPath := filepath.Join(dir, "b.json")
	require.NoError(t, os.WriteFile(bPath, bb.Bytes(), 0o644))
	cmp, _, err := runBenchCLI(t, "--compare", results, bPath)
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^\s*tp_avg\s+pairs/s\s+[\d.]+\s+[\d.]+\s+2\.000\s+B\s*$`, cmp)
	assert.Regexp(t, `(?m)^\s*lat_mean\s+ms\s+([\d.]+)\s+([\d.]+)\s+1\.000\s+=\s*$`, cmp)
	_, _, err = runBenchCLI(t, "--compare", results)
	assert.ErrorContains(t, err, "two results files")

	// Plots: linked and well-formed SVG.
	for _, name := range []string{"run1-latency-over-time.svg", "run1-throughput-over-time.svg", "run1-latency-histogram.svg"} {
		assert.Contains(t, rep, "(report-plots/"+name+")", "plot linked")
		b, err := os.ReadFile(filepath.Join(dir, "report-plots", name))
		require.NoError(t, err)
		d := xml.NewDecoder(bytes.NewReader(b))
		var root string
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s parses", name)
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		assert.Equal(t, "svg", root, name)
		assert.Contains(t, string(b), "fill:#1F77B4", name+" draws its first series (gomps/benchreport's plot tests check the geometry)")
		png, err := os.ReadFile(filepath.Join(dir, "report-plots", strings.TrimSuffix(name, ".svg")+".png"))
		require.NoError(t, err, "a PNG beside the SVG")
		assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "%s: PNG signature", name)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"batch-sizes":   {"--batch-sizes", "8,x"},
		"concurrency":   {"--concurrency", "0"},
		"routing":       {"--routing", "random"},
		"batch-timeout": {"--batch-timeout", "0s"},
		"workload":      {"--workload", filepath.Join(dir, "missing.tsv")},
		"no-output":     {"--output", "-"},
	} {
		t.Run("flag="+name, func(t *testing.T) {
			_, _, err := runBenchCLI(t, append([]string{"--model", tinyDir(t), "--requests", "1", "--output", filepath.Join(dir, "r.md")}, args...)...)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "bench: "), "error names the command: %v", err)
		})
	}
}

// TestBenchRoutingAndTimeout checks that --routing and --batch-timeout reach
// the library: the report's config names them.
func TestBenchRoutingAndTimeout(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "report.md")
	_, stderr, err := runBenchCLI(t, "--model", tinyDir(t), "--batch-sizes", "4", "--concurrency", "2",
		"--requests", "10", "--warmup-requests", "1", "--instances", "2", "--threads", "2",
		"--batcher", "fixed", "--routing", "round-robin", "--batch-timeout", "7ms", "--output", report)
	require.NoError(t, err, "stderr: %s", stderr)
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	rep := string(b)
	assert.Contains(t, rep, "round-robin routing", "subtitle names the routing in use")
	assert.Contains(t, rep, "fixed (max_batch=32, timeout=7.0ms)", "batching line shows the timeout in use")
}
