//go:build darwin && cgo

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/metal"
)

func init() { register(newKernelsCommand()) }

// newKernelsCommand builds the kernels command (Metal backend builds);
// tests build fresh ones because urfave/cli flags keep state between runs.
func newKernelsCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernels",
		Usage:     "benchmark each Metal kernel against the MPSGraph path, and the whole-model forward per bucket",
		UsageText: "gomps kernels [--seq 64,128,256] [--batch 32] [--precision f32|f16] [--iters 50] [--model FILE.gomps] [--json]",
		Description: `Runs each of our Metal kernels (embed, layer_norm, masked_softmax, bias_gelu) and the
same op built from MPSGraph on the device, on the same seeded random inputs, at the shapes
the MiniLM forward gives them for --batch rows of each --seq (embed, layer_norm: every
token at --hidden; bias_gelu: every token at --intermediate; masked_softmax: batch x heads
x seq score rows of seq keys). Each is timed over --iters calls after one warm-up, GPU
completion included; GB/s counts the least bytes the op reads and writes. The max
absolute difference and NMSE of the two outputs are printed too.

With --model (a native weights file), the model is loaded with its shape buckets (the
default set, or --buckets), all compiled at load, and --forward-iters forward passes of
full rows are timed per bucket. The forward uses the kernels GOMPS_METAL_KERNELS selects
(none, all, or a list of embed, layer_norm, softmax, bias_gelu; default none: pure
MPSGraph); run once with none and once with a selection to compare the two.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "seq", Usage: "tokens per row, a comma-separated list", Value: "64,128,256", EnvVars: []string{"GOMPS_SEQ"}},
			&cli.IntFlag{Name: "batch", Usage: "rows (pairs) per call", Value: 32, EnvVars: []string{"GOMPS_BATCH"}},
			&cli.StringFlag{Name: "precision", Usage: "f32 or f16", Value: "f32", EnvVars: []string{"GOMPS_PRECISION"}},
			&cli.IntFlag{Name: "iters", Usage: "timed calls per op and way", Value: 50, EnvVars: []string{"GOMPS_ITERS"}},
			&cli.IntFlag{Name: "hidden", Usage: "hidden size", Value: 384, EnvVars: []string{"GOMPS_HIDDEN"}},
			&cli.IntFlag{Name: "heads", Usage: "attention heads", Value: 12, EnvVars: []string{"GOMPS_HEADS"}},
			&cli.IntFlag{Name: "intermediate", Usage: "FFN size", Value: 1536, EnvVars: []string{"GOMPS_INTERMEDIATE"}},
			&cli.StringFlag{Name: "model", Usage: "native weights file for the whole-model forward (none: ops only)", EnvVars: []string{"GOMPS_MODEL"}},
			&cli.StringFlag{Name: "buckets", Usage: `shape buckets "BxS,..." for --model (default: the backend's set)`, EnvVars: []string{"GOMPS_BUCKETS"}},
			&cli.IntFlag{Name: "forward-iters", Usage: "timed forward passes per bucket", Value: 20, EnvVars: []string{"GOMPS_FORWARD_ITERS"}},
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
	var f16 bool
	switch p := c.String("precision"); p {
	case "f32":
	case "f16":
		f16 = true
	default:
		return fmt.Errorf("--precision %q: want f32 or f16", p)
	}
	if c.Int("batch") < 1 || c.Int("iters") < 1 || c.Int("forward-iters") < 1 ||
		c.Int("hidden") < 1 || c.Int("heads") < 1 || c.Int("intermediate") < 1 {
		return fmt.Errorf("--batch, --iters, --forward-iters, --hidden, --heads and --intermediate must be at least 1")
	}
	rep := metalKernelsReport{Precision: c.String("precision"), Batch: c.Int("batch"), Iters: c.Int("iters")}
	for _, oc := range metalOpPlan(seqs, c.Int("batch"), c.Int("hidden"), c.Int("heads"), c.Int("intermediate")) {
		r, err := metal.CompareOp(oc.Op, f16, oc.Rows, oc.Cols, c.Int("iters"))
		if err != nil {
			if errors.Is(err, metal.ErrNoDevice) {
				return err
			}
			return fmt.Errorf("%s at %d x %d: %w", oc.Op, oc.Rows, oc.Cols, err)
		}
		row, err := newMetalOpRow(oc, f16, r.KernelMS, r.GraphMS, r.MaxAbsDiff, r.NMSE)
		if err != nil {
			return err
		}
		rep.Ops = append(rep.Ops, row)
	}
	if path := c.String("model"); path != "" {
		stats, fw, err := benchForward(path, f16, c.String("buckets"), c.Int("forward-iters"))
		if err != nil {
			return fmt.Errorf("forward: %w", err)
		}
		rep.Model, rep.LoadMS = path, stats.LoadMS
		if len(stats.Kernels) > 0 {
			// GOMPS_METAL_KERNELS chose kernels inside the forward: say which,
			// so two runs (none vs a selection) can be told apart
			rep.Model = fmt.Sprintf("%s, kernels %s: %d graph segments + %d kernel dispatches per forward",
				path, strings.Join(stats.Kernels, ","), stats.Segments, stats.KernelSteps)
		}
		for i, f := range fw {
			row := metalForwardRow{Batch: f.Batch, Seq: f.Seq, MeanMS: f.MeanMS, BestMS: f.BestMS}
			if f.MeanMS > 0 {
				row.PairsPerSec = float64(f.Batch) / (f.MeanMS / 1e3)
			}
			if i < len(stats.Buckets) {
				row.CompileMS = stats.Buckets[i].MS
			}
			rep.Forward = append(rep.Forward, row)
		}
	} else {
		rep.ForwardNote = "no --model given"
	}
	out := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeMetalKernels(out, rep)
	return nil
}
