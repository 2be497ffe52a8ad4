//go:build cgo && !darwin

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/kernels/cpu/isaexpect"
)

// allCommands are fresh instances of every command.
func allCommands() []*cli.Command {
	return []*cli.Command{newScoreCommand(), newEvalCommand(), newBenchCommand(), newServeCommand(),
		newConvertCommand(), newKernelsCommand(), newVersionCommand()}
}

// packageName matches a package of this module used as a message prefix,
// as "pairio: " or "gomps: " (not a path such as model.gomps or a flag such
// as --shard): each layer adds where, never who.
var packageName = regexp.MustCompile(`(^|\s)(gomps|pairio|trec|shard|engine|benchreport|native|server|dashboard): `)

// TestErrorVoice runs failing commands and checks what main prints: one
// program prefix, the command once, no package name, and the cause.
func TestErrorVoice(t *testing.T) {
	dir := t.TempDir()
	model := tinyModel(t)
	ok := writeFile(t, dir, "ok.tsv", "q\tp\n")
	long := writeFile(t, dir, "long.tsv", "q\t"+strings.Repeat("berlin ", 600)+"\n")
	emptyQuery := writeFile(t, dir, "empty.tsv", "\tp\n")
	badUTF8 := writeFile(t, dir, "bad.tsv", "q\tp\xff\n")
	qrels := writeFile(t, dir, "qrels", "1 0 d1 1\n")
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name string
		args []string
		want string // the whole line, or its start when it ends with "..."
	}{
		{"score/input", []string{"score", "--model", model, "--input", missing + ".tsv"},
			"gomps: score: open " + missing + ".tsv: no such file or directory"},
		{"score/model", []string{"score", "--model", missing + ".gomps", "--input", ok},
			"gomps: score: no model found: " + missing + `.gomps is no file or directory, nor a Hugging Face model id ("org/name")`},
		{"score/precision", []string{"score", "--model", model, "--input", ok, "--precision", "f99"},
			`gomps: score: precision "f99": want f32, bf16 or f16`},
		{"score/instances", []string{"score", "--model", model, "--input", ok, "--instances", "9999"},
			"gomps: score: instances 9999: want 1..256"},
		{"score/max-length", []string{"score", "--model", model, "--input", ok, "--max-length", "9999"},
			"gomps: score: cpu: " + model + ": max_seq 9999 is more than the model's ..."},
		{"score/too-long", []string{"score", "--model", model, "--input", long, "--truncate=false", "-q"},
			"gomps: score: " + long + ":1: pair 0: 604 tokens, longer than the maximum length ..."},
		{"score/empty-query", []string{"score", "--model", model, "--input", emptyQuery, "-q"},
			"gomps: score: " + emptyQuery + ":1: empty query"},
		{"score/utf8", []string{"score", "--model", model, "--input", badUTF8, "-q"},
			"gomps: score: " + badUTF8 + ":1: passage is not valid UTF-8"},
		{"score/shard", []string{"score", "--model", model, "--input", ok, "--shard", "3/2"},
			`gomps: score: --shard: "3/2": invalid shard spec: index must be in 0..1 (shards are numbered from 0), got 3`},
		{"score/flag", []string{"score", "--backend", "nope"},
			"gomps: score: flag provided but not defined: -backend"},
		{"eval/run", []string{"eval", "--run", missing + ".run", "--qrels", qrels},
			"gomps: eval: open " + missing + ".run: no such file or directory"},
		{"eval/metric", []string{"eval", "--run", missing, "--qrels", qrels, "--metric", "bogus"},
			`gomps: eval: unknown metric "bogus" ...`},
		{"bench/batch-sizes", []string{"bench", "--model", model, "--batch-sizes", "0"},
			`gomps: bench: --batch-sizes: "0" is not a positive integer`},
		{"serve/max-body", []string{"serve", "--model", model, "--max-body", "0"},
			`gomps: serve: --max-body: "0" is not a positive size`},
		{"convert/input", []string{"convert", "--input", missing, "--output", filepath.Join(dir, "x.gomps")},
			"gomps: convert: no model found: " + missing + ` is no file or directory, nor a Hugging Face model id ("org/name")`},
		{"kernels/threads", []string{"kernels", "--threads", "-1"},
			"gomps: kernels: --threads must not be negative, --batch and --layers must be at least 1, --min-time positive"},
		{"version/argument", []string{"version", "extra"},
			`gomps: version: unexpected argument "extra"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runApp(t, allCommands(), c.args...)
			require.Error(t, err)
			checkErrorLine(t, errorLine(err), c.args[0], c.want)
		})
	}
}

// checkErrorLine checks a line main prints for a failure of command.
func checkErrorLine(t *testing.T, line, command, want string) {
	t.Helper()
	prefix := "gomps: " + command + ": "
	assert.True(t, strings.HasPrefix(line, prefix), "%q starts with %q", line, prefix)
	assert.Len(t, packageName.FindAllString(line, -1), 1, "one program prefix, no package name: %q", line)
	assert.NotContains(t, line[len(prefix):], " "+command+": ", "the command once: %q", line)
	assert.False(t, strings.HasPrefix(line[len(prefix):], command+": "), "the command once: %q", line)
	if start, ok := strings.CutSuffix(want, "..."); ok {
		assert.True(t, strings.HasPrefix(line, start), "%q\nstarts with %q", line, start)
	} else {
		assert.Equal(t, want, line)
	}
}

// TestErrorVoiceBF16 runs `gomps score --precision bf16` where bf16 is not
// native (oneDNN capped below AVX512-BF16, in a child process: oneDNN reads
// its ceiling once per process) and checks the whole line.
func TestErrorVoiceBF16(t *testing.T) {
	if args := os.Getenv("GOMPS_TEST_ERROR_CHILD"); args != "" {
		_, _, err := runApp(t, allCommands(), strings.Split(args, "\x1f")...)
		if err != nil {
			os.Stdout.WriteString("ERROR " + errorLine(err) + "\n")
		}
		return
	}
	bi, err := gomps.Backend()
	require.NoError(t, err)
	host, err := isaexpect.For(bi.ISA)
	require.NoError(t, err)
	// avx512_core_vnni where this CPU has it (the text users see on such
	// CPUs), else avx2.
	level, err := isaexpect.For("avx2")
	require.NoError(t, err)
	if vnni, _ := isaexpect.For("avx512_core_vnni"); levelIndex(host) >= levelIndex(vnni) {
		level = vnni
	}
	model := tinyModel(t)
	in := writeFile(t, t.TempDir(), "ok.tsv", "q\tp\n")
	cmd := exec.Command(os.Args[0], "-test.run=^TestErrorVoiceBF16$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ONEDNN_MAX_CPU_ISA="+level.Cap, "DNNL_MAX_CPU_ISA=",
		"GOMPS_TEST_ERROR_CHILD="+strings.Join([]string{"score", "--model", model, "--input", in, "--precision", "bf16"}, "\x1f"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "ERROR "); ok {
			line = rest
		}
	}
	want := "gomps: score: " + level.BF16Refusal()
	checkErrorLine(t, line, "score", want)
	if level.ISA == "avx512_core_vnni" {
		assert.Equal(t, "gomps: score: precision bf16 needs AMX or AVX512-BF16; this CPU (avx512_core_vnni) runs f32", line)
	}
}

// levelIndex is l's place in isaexpect.Levels (lowest first), -1 if absent.
func levelIndex(l isaexpect.Level) int {
	for i, x := range isaexpect.Levels {
		if x.ISA == l.ISA {
			return i
		}
	}
	return -1
}
