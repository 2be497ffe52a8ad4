//go:build cgo && !darwin

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/kernels/cpu"
)

func init() { register(newKernelsCommand()) }

// newKernelsCommand builds the kernels command (CPU backend builds only);
// tests build fresh ones because urfave/cli flags keep state between runs.
func newKernelsCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernels",
		Usage:     "microbenchmark every kernel of the CPU backend at the model's shapes",
		UsageText: "gomps kernels [--seq 64,128,256] [--batch 32] [--threads N] [--precision f32|bf16] [--json]",
		Description: `Runs each kernel of the CPU backend's forward pass on its own, through the same C
functions the forward pass calls, on a synthetic layer with random weights packed as a
model packs them: embeddings, the four oneDNN matmuls (qkv, attn_out, ffn_up with its
fused GELU, ffn_down), attention with the kernel the forward pass picks (AMX in bf16 where
the ISA is avx512_core_amx, else the AVX-512 f32 kernel where it has AVX-512, else sgemm;
ONEDNN_MAX_CPU_ISA caps every choice), its softmax rows, layernorm, the GELU eltwise alone,
the pooler, in bf16 the f32->bf16 input conversion, and every other attention kernel
GOMPS_CPU_ATTENTION can select (sgemm, avx512, amx) beside it, so one run compares
them. Shapes default to MiniLM-L6
(H 384, 12 heads, I 1536), B = --batch rows of L = --seq tokens.

Each kernel runs twice untimed, then until --min-time has passed (at least 5 calls);
the best time gives the rate: GFLOP/s for matmuls, attention and the pooler, GB/s
(bytes read + written) for the rest. The fraction of peak compares it with peaks
measured in the same run: an FMA register loop (fp32), the oneDNN matmul at
2048x1024x1024 in the run's precision (bf16 linear layers), and a 64 MiB memcpy.
The forward estimate adds the kernels' best times; it is not a measured forward pass.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "seq", Usage: "tokens per row, a comma-separated list", Value: "64,128,256", EnvVars: []string{"GOMPS_SEQ"}},
			&cli.IntFlag{Name: "batch", Usage: "rows (pairs) per call", Value: 32, EnvVars: []string{"GOMPS_BATCH"}},
			&cli.IntFlag{Name: "threads", Usage: "OpenMP threads (0 = the CPUs this process may use: affinity mask and cgroup quota)", EnvVars: []string{"GOMPS_THREADS"}},
			&cli.StringFlag{Name: "precision", Usage: "f32 or bf16 (the linear layers; needs AMX or AVX512-BF16)", Value: "f32", EnvVars: []string{"GOMPS_PRECISION"}},
			&cli.DurationFlag{Name: "min-time", Usage: "timed run per kernel and length", Value: 200 * time.Millisecond, EnvVars: []string{"GOMPS_MIN_TIME"}},
			&cli.IntFlag{Name: "layers", Usage: "layers counted in the forward estimate", Value: 6, EnvVars: []string{"GOMPS_LAYERS"}},
			&cli.IntFlag{Name: "hidden", Usage: "hidden size", Value: cpu.MiniLMShape.Hidden, EnvVars: []string{"GOMPS_HIDDEN"}},
			&cli.IntFlag{Name: "heads", Usage: "attention heads", Value: cpu.MiniLMShape.Heads, EnvVars: []string{"GOMPS_HEADS"}},
			&cli.IntFlag{Name: "intermediate", Usage: "FFN size", Value: cpu.MiniLMShape.Intermediate, EnvVars: []string{"GOMPS_INTERMEDIATE"}},
			&cli.IntFlag{Name: "vocab", Usage: "vocabulary size (embedding table rows)", Value: cpu.MiniLMShape.Vocab, EnvVars: []string{"GOMPS_VOCAB"}},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON", EnvVars: []string{"GOMPS_JSON"}},
		},
		Action: kernelsAction,
	}
}

func kernelsAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	seqs, err := parseIntList("seq", c.String("seq"))
	if err != nil {
		return err
	}
	var prec int
	switch p := c.String("precision"); p {
	case "f32":
		prec = cpu.PrecisionF32
	case "bf16":
		prec = cpu.PrecisionBF16
	default:
		return fmt.Errorf("--precision %q: want f32 or bf16", p)
	}
	if c.Int("threads") < 0 || c.Int("batch") < 1 || c.Duration("min-time") <= 0 || c.Int("layers") < 1 {
		return fmt.Errorf("--threads must not be negative, --batch and --layers must be at least 1, --min-time positive")
	}
	threads := c.Int("threads")
	if threads == 0 {
		threads = gomps.AvailableCPUs()
	}
	cfg := cpu.KernelBenchConfig{
		Shape: cpu.KernelShape{Hidden: c.Int("hidden"), Heads: c.Int("heads"), Intermediate: c.Int("intermediate"), Vocab: c.Int("vocab")},
		Batch: c.Int("batch"), Seqs: seqs, Threads: threads, Precision: prec, MinTime: c.Duration("min-time"), Seed: 1,
	}
	kb, err := cpu.RunKernelBench(cfg)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(kb)
	}
	cf := kb.Config
	fmt.Fprintf(out, "# gomps kernels: CPU backend, %s, B=%d, H=%d, %d heads, I=%d, %d threads\n\n",
		c.String("precision"), cf.Batch, cf.Shape.Hidden, cf.Shape.Heads, cf.Shape.Intermediate, cf.Threads)
	fmt.Fprintf(out, "Peaks measured in this run (%d threads): FMA loop (%s) %.1f GFLOP/s; %s (%s) %.1f GFLOP/s; memcpy 64 MiB %.1f GB/s (read + write).\n\n",
		cf.Threads, kb.Peaks.FMAISA, kb.Peaks.FMA, kb.Peaks.MatmulWhy, c.String("precision"), kb.Peaks.Matmul, kb.Peaks.Copy)
	fmt.Fprintln(out, "| kernel | L | rows | threads | best µs | median µs | reps | rate | % of peak | peak | call |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range kb.Results {
		fmt.Fprintf(out, "| %s | %d | %d | %d | %.1f | %.1f | %d | %.4g %s | %.3g%% | %s | %s |\n", r.Name, r.Seq, r.Rows, r.Threads,
			us(r.Best), us(r.Median), r.Reps, r.Rate, r.Unit, 100*r.PeakFrac, r.PeakName, r.What)
	}
	fmt.Fprintf(out, "\nForward estimate from the kernels' best times (embeddings + %d x layer + pooler; not a measured forward pass):\n\n", c.Int("layers"))
	for _, L := range seqs {
		d, pps := kb.ForwardEstimate(L, c.Int("layers"))
		fmt.Fprintf(out, "- L=%d: %.2f ms per batch of %d = %.0f pairs/s\n", L, float64(d)/1e6, cf.Batch, pps)
	}
	if strings.Contains(kb.Peaks.FMAISA, "scalar") {
		fmt.Fprintln(out, "\nnote: no AVX2/AVX-512 on this CPU; the FMA peak is a scalar loop")
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
