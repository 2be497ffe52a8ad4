//go:build cgo && !darwin

package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/kernels/cpu"
)

func runKernelsCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	app.Commands = []*cli.Command{newKernelsCommand()}
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := run(app, append([]string{"gomps", "kernels"}, args...))
	return out.String(), err
}

var tinyKernelArgs = []string{"--hidden", "32", "--heads", "2", "--intermediate", "64", "--vocab", "50",
	"--batch", "2", "--seq", "8,16", "--threads", "2", "--min-time", "1ms"}

// TestKernelsTiny runs the command on tiny shapes: every kernel at every
// length with a non-zero rate and fraction of peak.
func TestKernelsTiny(t *testing.T) {
	out, err := runKernelsCLI(t, tinyKernelArgs...)
	require.NoError(t, err)
	assert.Regexp(t, `Peaks measured in this run \(2 threads\): FMA loop \(\S+\) [1-9][\d.]* GFLOP/s`, out)
	row := regexp.MustCompile(`(?m)^\| (\w+) \| (\d+) \| \d+ \| \d \| ([\d.]+) \| ([\d.]+) \| \d+ \| ([\d.e+-]+) (GFLOP/s|GB/s) \| ([\d.e+-]+)% \|`)
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		name := m[1] + "/L=" + m[2]
		seen[name] = true
		rate, err := strconv.ParseFloat(m[5], 64)
		require.NoError(t, err)
		frac, err := strconv.ParseFloat(m[7], 64)
		require.NoError(t, err)
		assert.Greater(t, rate, 0.0, "%s rate", name)
		assert.Greater(t, frac, 0.0, "%s fraction of peak", name)
	}
	for _, k := range []string{"embeddings", "qkv", "attention", "softmax", "attn_out", "layernorm", "ffn_up", "gelu", "ffn_down", "pooler"} {
		for _, L := range []string{"8", "16"} {
			assert.True(t, seen[k+"/L="+L], "kernel %s at L=%s", k, L)
		}
	}
	assert.Regexp(t, `(?m)^- L=8: [\d.]+ ms per batch of 2 = [1-9]\d* pairs/s$`, out)
}

func TestKernelsJSON(t *testing.T) {
	out, err := runKernelsCLI(t, append(tinyKernelArgs, "--json", "--seq", "8")...)
	require.NoError(t, err)
	var kb cpu.KernelBench
	require.NoError(t, json.Unmarshal([]byte(out), &kb))
	assert.NotEmpty(t, kb.Results)
	for _, r := range kb.Results {
		assert.Equal(t, 8, r.Seq)
		assert.Greater(t, r.Rate, 0.0, r.Name)
	}
}

func TestKernelsFlagErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"precision": {"--precision", "f16"},
		"seq":       {"--seq", "8,-1"},
		"batch":     {"--batch", "0"},
		"heads":     {"--heads", "5"},
	} {
		t.Run("flag="+name, func(t *testing.T) {
			_, err := runKernelsCLI(t, append(append([]string{}, tinyKernelArgs...), args...)...)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "kernels: "), "%v", err)
		})
	}
}
