package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
	"github.com/stretchr/testify/require"
)

// gompsBin is the gomps CLI, built by tools/beam-test.sh (GOMPS_BIN).
func gompsBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("GOMPS_BIN")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("beam: GOMPS_BIN is not set under CI=true (run tools/beam-test.sh)")
		}
		t.Skip("GOMPS_BIN not set: build the gomps CLI to compare with it (tools/beam-test.sh does)")
	}
	return bin
}

// lineKey returns the shard key of one output line of the score command:
// the query id, or the query text without one (shard.Key).
func lineKey(t *testing.T, line string, format pairio.Format, ids bool) string {
	t.Helper()
	switch format {
	case pairio.FormatJSONL:
		var rec struct{ QID, Query string }
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "line %q", line)
		return shard.Key(rec.QID, rec.Query)
	case pairio.FormatTREC:
		return strings.Fields(line)[0]
	}
	f := strings.Split(line, "\t")
	if ids { // qid docid query passage score
		return shard.Key(f[0], f[2])
	}
	return f[0]
}

// shardLines keeps the lines of out whose query is in shard spec: what
// `gomps score --shard` keeps, by the rule of package shard.
func shardLines(t *testing.T, out string, format pairio.Format, ids bool, spec shard.Spec) string {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if l == "" {
			continue
		}
		if spec.Keep(lineKey(t, strings.TrimSuffix(l, "\n"), format, ids)) {
			b.WriteString(l)
		}
	}
	return b.String()
}

// The pipeline's shards equal the gomps CLI's output on the same input,
// split by the shard rule: run the real `gomps score` once per case, and
// `gomps score --shard i/n` per shard when the CLI has the flag.
func TestPipelineEqualsCLI(t *testing.T) {
	model := tinyModel(t)
	bin := gompsBin(t)
	help, err := exec.Command(bin, "score", "--help").CombinedOutput()
	require.NoError(t, err, "%s", help)
	cliShards := strings.Contains(string(help), "--shard")
	if !cliShards {
		t.Log("this gomps score has no --shard yet: its output is split by the shard rule here")
	}
	dir := t.TempDir()
	jsonl, tsv := synthetic(t, dir, 19, 7)
	cases := []struct {
		name      string
		in        string
		outFormat pairio.Format
		args      []string
		opt       func(*Options)
		ids       bool
	}{
		{"in=jsonl/out=jsonl", jsonl, pairio.FormatJSONL, nil, func(*Options) {}, true},
		{"in=jsonl/out=trec/top-k=3", jsonl, pairio.FormatTREC, []string{"--top-k", "3"}, func(o *Options) { o.TopK = 3 }, true},
		{"in=jsonl/out=tsv/rank", jsonl, pairio.FormatTSV, []string{"--rank"}, func(o *Options) { o.Rerank = true }, true},
		{"in=tsv/out=tsv", tsv, pairio.FormatTSV, nil, func(*Options) {}, false},
	}
	for _, c := range cases {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/shards=%d", c.name, n), func(t *testing.T) {
				cliOut := filepath.Join(dir, c.name, fmt.Sprint(n), "cli."+string(c.outFormat))
				require.NoError(t, os.MkdirAll(filepath.Dir(cliOut), 0o755))
				args := append([]string{"score", "--quiet", "--model", model, "--input", c.in,
					"--output-format", string(c.outFormat), "--output", cliOut}, c.args...)
				out, err := exec.Command(bin, args...).CombinedOutput()
				require.NoError(t, err, "gomps %s: %s", strings.Join(args, " "), out)
				whole, err := os.ReadFile(cliOut)
				require.NoError(t, err)

				o := Options{Input: c.in, OutputFormat: string(c.outFormat), Shards: n, Batch: 16,
					Output: filepath.Join(dir, c.name, fmt.Sprint(n), "beam", "s."+string(c.outFormat)),
					Model:  ModelConfig{Model: model}}
				c.opt(&o)
				_, err = runPipeline(context.Background(), o)
				require.NoError(t, err)
				for i := range n {
					spec := shard.Spec{Index: i, Count: n}
					want := shardLines(t, string(whole), c.outFormat, c.ids, spec)
					if cliShards && n > 1 {
						p := filepath.Join(filepath.Dir(cliOut), fmt.Sprintf("cli-%d.out", i))
						sargs := append(args[:len(args):len(args)], "--shard", spec.String(), "--output", p)
						out, err := exec.Command(bin, sargs...).CombinedOutput()
						require.NoError(t, err, "%s", out)
						b, err := os.ReadFile(p)
						require.NoError(t, err)
						assertSameOutput(t, want, string(b), c.outFormat, "gomps score --shard "+spec.String()+" vs its unsharded output split by the rule")
						want = string(b)
					}
					assertSameOutput(t, want, readShard(t, o, i), c.outFormat, fmt.Sprintf("beam shard %s vs gomps score", spec))
				}
			})
		}
	}
}
