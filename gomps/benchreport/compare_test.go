package benchreport

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResultsRoundTripAndCompare(t *testing.T) {
	env := Environment{Command: "gomps bench", Version: "v0.1.0", Commit: "aaa", Model: "m", SHA256: "s", Backend: "cpu", ISA: "avx2",
		Precision: "f32", CPUModel: "cpu", CPUs: 2, OS: "linux/amd64"}
	rep := &Report{Env: env, Runs: []RunReport{
		{Config: RunConfig{PairsPerRequest: 8, Concurrency: 4}, Measure: &PhaseSummary{Pairs: 200, Wall: 2, TPOverall: 100,
			Latency: Dist{Mean: 40, P50: 30, P95: 80, P99: 90}, CPU: -1, CPUPct: 150, HWMMB: -1,
			Contention: Contention{Known: true, OtherShare: 0.02, StealShare: 0}}},
		{Config: RunConfig{PairsPerRequest: 64, Concurrency: 1}, Measure: &PhaseSummary{TPOverall: 10, CPU: -1, HWMMB: -1}},
	}}
	a := ResultsOf(rep)
	assert.Equal(t, 100.0, a.Runs[0].Figures["tp_avg"])
	assert.Equal(t, 150.0, a.Runs[0].Figures["cpu"])
	assert.NotContains(t, a.Runs[0].Figures, "padding_waste", "no batches: not measured, left out")
	assert.NotContains(t, a.Runs[1].Figures, "other_processes_cpu", "contention unknown: left out")

	path := filepath.Join(t.TempDir(), "a.json")
	var buf bytes.Buffer
	require.NoError(t, WriteResults(&buf, a))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	back, err := ReadResults(path)
	require.NoError(t, err)
	assert.Equal(t, a, back, "round trip")

	b := back
	b.Environment.Commit = "bbb"
	b.Runs = []RunFigures{{PairsPerRequest: 8, Concurrency: 4, Figures: map[string]float64{
		"tp_avg": 200, "lat_mean": 20, "lat_p50": 30, "cpu": 150, "other_processes_cpu": 25}},
		{PairsPerRequest: 16, Concurrency: 4, Figures: map[string]float64{"tp_avg": 1}}}
	buf.Reset()
	require.NoError(t, Compare(&buf, "a.json", "b.json", a, b))
	out := buf.String()
	line := func(name string) []string {
		m := regexp.MustCompile(`(?m)^\s*` + name + `\s.*$`).FindString(out)
		require.NotEmpty(t, m, "row %s in\n%s", name, out)
		return strings.Fields(m)
	}
	assert.Contains(t, line("gomps"), "(differs)", "the builds differ")
	assert.NotContains(t, line("model"), "(differs)")
	assert.Equal(t, []string{"tp_avg", "pairs/s", "100.00", "200.00", "2.000", "B"}, line("tp_avg"), "higher throughput is better")
	assert.Equal(t, []string{"lat_mean", "ms", "40.00", "20.00", "0.500", "B"}, line("lat_mean"), "lower latency is better")
	assert.Equal(t, []string{"lat_p50", "ms", "30.00", "30.00", "1.000", "="}, line("lat_p50"))
	assert.Equal(t, []string{"lat_p95", "ms", "80.00", "n/a", "n/a"}, line("lat_p95"), "missing in B")
	assert.Contains(t, out, "batch=64, conc=1: only in A")
	assert.Contains(t, out, "batch=16, conc=4: only in B")
	assert.Contains(t, out, "warning: contended machine in B (batch=8, conc=4)")

	require.NoError(t, os.WriteFile(path, []byte(`{"version": 9}`), 0o644))
	_, err = ReadResults(path)
	assert.ErrorContains(t, err, "results version 9")
}
