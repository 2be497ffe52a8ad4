package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/benchreport"
)

// TestBenchFlagsBeforeModel: each bad argument or flag that parseBenchFlags
// checks fails with its own message before the model loads (the model path
// does not exist, so reaching Open would fail differently).
func TestBenchFlagsBeforeModel(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.md")
	missing := filepath.Join(dir, "missing.tsv")
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"argument", []string{"extra"}, `bench: unexpected argument "extra"`},
		{"batch-sizes", []string{"--batch-sizes", "8,x"}, `bench: --batch-sizes: "x" is not a positive integer`},
		{"batch-sizes=empty", []string{"--batch-sizes", " , "}, "bench: --batch-sizes is empty"},
		{"concurrency", []string{"--concurrency", "0"}, `bench: --concurrency: "0" is not a positive integer`},
		{"requests", []string{"--requests", "-1"}, "bench: --requests -1 is negative"},
		{"warmup-requests", []string{"--warmup-requests", "-2"}, "bench: --warmup-requests -2 is negative"},
		{"duration", []string{"--requests", "0", "--duration", "0s"}, "bench: --duration must be positive when --requests is 0"},
		{"warmup", []string{"--warmup", "-1s"}, "bench: --warmup must not be negative and --sample-interval must be positive"},
		{"sample-interval", []string{"--sample-interval", "0s"}, "bench: --warmup must not be negative and --sample-interval must be positive"},
		{"output", []string{"--output", "-"}, "bench: --output must name a file (the report links files beside it)"},
		{"threads", []string{"--threads", "-1"}, "bench: --threads -1 is negative"},
		{"workload", []string{"--workload", missing}, "bench: "},
	} {
		t.Run("flag="+c.name, func(t *testing.T) {
			args := append([]string{"--model", filepath.Join(dir, "no-model"), "--requests", "1", "--output", out}, c.args...)
			_, _, err := runBenchCLI(t, args...)
			require.Error(t, err)
			if c.name == "workload" {
				assert.ErrorContains(t, err, missing, "names the workload file")
				assert.NotContains(t, err.Error(), "no-model", "fails before the model")
				return
			}
			assert.Equal(t, c.msg, err.Error())
		})
	}
}

// benchRun is a run of the given shape for the summary steps.
func benchRun(n, conc int, unexplained float64, contended bool) benchreport.RunReport {
	m := &benchreport.PhaseSummary{Requests: 10, Pairs: 10 * n, Wall: 2, TPOverall: 5 * float64(n), UnexplainedShare: unexplained}
	m.Latency.Mean, m.Latency.P95, m.Latency.P99, m.TPPerRequest.P95 = 100, 150, 170, 90
	if contended {
		m.Contention = benchreport.Contention{Known: true, OtherShare: 0.5, StealShare: 0.01}
	}
	return benchreport.RunReport{Config: benchreport.RunConfig{PairsPerRequest: n, Concurrency: conc}, Measure: m}
}

// TestPrintBenchSummary: one table row per run on stdout, the files written,
// and a warning on stderr for each contended run only.
func TestPrintBenchSummary(t *testing.T) {
	rep := &benchreport.Report{Runs: []benchreport.RunReport{benchRun(8, 4, 0.02, false), benchRun(64, 32, 0.031, true)}}
	var out, errOut bytes.Buffer
	printBenchSummary(&out, &errOut, rep, benchFiles{report: "r.md", results: "r.json"})
	assert.Equal(t, "| Batch | Conc | Pairs | Time(s) | Lat Avg | Lat P95 | Lat P99 | TP Avg | TP P95 | Unexplained |\n"+
		"| 8 | 4 | 80 | 2.00 | 100.0ms | 150.0ms | 170.0ms | 40.0 | 90.0 | 2.0% |\n"+
		"| 64 | 32 | 640 | 2.00 | 100.0ms | 150.0ms | 170.0ms | 320.0 | 90.0 | 3.1% |\n"+
		"report: r.md\n"+
		"results: r.json (gomps bench --compare A.json B.json)\n", out.String())
	assert.Equal(t, "bench: warning: run 2: the machine was contended (other processes 50.0% of its CPU time, steal 1.0%); the report says so\n",
		errOut.String())

	out.Reset()
	printBenchSummary(&out, &errOut, &benchreport.Report{}, benchFiles{report: "r.md"})
	assert.NotContains(t, out.String(), "results:", "no results line without a results file")
}

// TestBenchUnexplained: a run whose unexplained share passes the limit fails
// the command, naming the run; at the limit it passes.
func TestBenchUnexplained(t *testing.T) {
	lim := benchreport.MaxUnexplainedShare
	assert.NoError(t, benchUnexplained(&benchreport.Report{Runs: []benchreport.RunReport{benchRun(8, 4, lim, false)}}))
	err := benchUnexplained(&benchreport.Report{Runs: []benchreport.RunReport{benchRun(8, 4, 0, false), benchRun(16, 2, lim+0.05, false)}})
	require.Error(t, err)
	assert.Equal(t, "batch=16 conc=2: 15.0% of the mean latency is unexplained by the library's timings (limit 10%); the report says so", err.Error())
	// on a contended machine other processes explain the gap: a warning, not a failure
	assert.NoError(t, benchUnexplained(&benchreport.Report{Runs: []benchreport.RunReport{benchRun(16, 2, lim+0.2, true)}}))
}

// TestRelPath: report links are relative to the report's directory, with
// forward slashes.
func TestRelPath(t *testing.T) {
	assert.Equal(t, "r-plots/run1-latency-histogram.svg", relPath("out", filepath.Join("out", "r-plots", "run1-latency-histogram.svg")))
	assert.Equal(t, "../series.jsonl", relPath("out", "series.jsonl"))
	abs, err := filepath.Abs("x")
	require.NoError(t, err)
	assert.Equal(t, abs, relPath("out", abs), "no relative form from a relative dir to an absolute path")
}
