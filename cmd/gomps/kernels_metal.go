package main

// The platform-neutral half of `gomps kernels` on Metal (kernels_darwin.go
// runs it): the shapes each kernel is compared at, the GB/s arithmetic and
// the report. Plain Go, so it is built and tested everywhere.

import (
	"fmt"
	"io"

	"github.com/gomps/gomps/metal"
)

// metalOpCase is one metal.CompareOp run: op at rows x cols, the shape the
// forward pass gives it at tokens per row Seq.
type metalOpCase struct {
	Op         string
	Seq        int
	Rows, Cols int
}

// metalOpPlan lists, for each seq, the four ops at a batch of batch rows of
// seq tokens: embed and layer_norm over every token at hidden, bias_gelu
// over every token at inter, masked_softmax over the batch * heads * seq
// score rows of seq keys.
func metalOpPlan(seqs []int, batch, hidden, heads, inter int) []metalOpCase {
	var out []metalOpCase
	for _, s := range seqs {
		tokens := batch * s
		out = append(out,
			metalOpCase{"embed", s, tokens, hidden},
			metalOpCase{"layer_norm", s, tokens, hidden},
			metalOpCase{"masked_softmax", s, batch * heads * s, s},
			metalOpCase{"bias_gelu", s, tokens, inter},
		)
	}
	return out
}

// metalOpRow is one compared op: mean times per call (GPU completion
// included), the rates they give and how far the two outputs are apart.
type metalOpRow struct {
	metalOpCase
	Bytes               int64
	KernelMS, GraphMS   float64
	KernelGBs, GraphGBs float64
	MaxAbsDiff, NMSE    float64
}

func newMetalOpRow(c metalOpCase, f16 bool, kernelMS, graphMS, maxAbs, nmse float64) (metalOpRow, error) {
	b, err := metal.OpBytes(c.Op, f16, c.Rows, c.Cols)
	if err != nil {
		return metalOpRow{}, err
	}
	r := metalOpRow{metalOpCase: c, Bytes: b, KernelMS: kernelMS, GraphMS: graphMS, MaxAbsDiff: maxAbs, NMSE: nmse}
	r.KernelGBs, r.GraphGBs = gbPerSec(b, kernelMS), gbPerSec(b, graphMS)
	return r, nil
}

// gbPerSec is bytes per ms as GB/s (1e9 bytes), 0 for a time that is not positive.
func gbPerSec(bytes int64, ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	return float64(bytes) / (ms * 1e-3) / 1e9
}

// metalForwardRow is the whole-model forward at one compiled bucket.
type metalForwardRow struct {
	Batch, Seq     int
	MeanMS, BestMS float64
	PairsPerSec    float64 // batch / mean
	CompileMS      float64 // the bucket's compile + warm-up at load
}

// metalKernelsReport is what `gomps kernels` prints on Metal (--json: as is).
type metalKernelsReport struct {
	Precision   string
	Batch       int
	Iters       int
	Ops         []metalOpRow
	Model       string `json:",omitempty"`
	LoadMS      float64
	Forward     []metalForwardRow
	ForwardNote string `json:",omitempty"`
}

func writeMetalKernels(w io.Writer, r metalKernelsReport) {
	fmt.Fprintf(w, "# gomps kernels: Metal backend, %s, B=%d, %d timed calls each after one warm-up\n\n", r.Precision, r.Batch, r.Iters)
	fmt.Fprintln(w, "Each Metal kernel against the same op as an MPSGraph on the device (metal.CompareOp); GB/s = the")
	fmt.Fprintln(w, "least bytes the op reads and writes (metal.OpBytes) / mean time per call, GPU completion included.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| op | L | rows | cols | kernel ms | graph ms | kernel GB/s | graph GB/s | kernel speed-up | max abs diff | NMSE |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, o := range r.Ops {
		speed := 0.0
		if o.KernelMS > 0 {
			speed = o.GraphMS / o.KernelMS
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.4f | %.4f | %.1f | %.1f | %.2fx | %.3g | %.3g |\n", o.Op, o.Seq, o.Rows, o.Cols,
			o.KernelMS, o.GraphMS, o.KernelGBs, o.GraphGBs, speed, o.MaxAbsDiff, o.NMSE)
	}
	fmt.Fprintln(w)
	if len(r.Forward) == 0 {
		fmt.Fprintf(w, "Whole-model forward: not run (%s).\n", r.ForwardNote)
		return
	}
	fmt.Fprintf(w, "Whole-model forward per bucket (%s; load %.0f ms, every bucket compiled and warmed up at load):\n\n", r.Model, r.LoadMS)
	fmt.Fprintln(w, "| batch | seq | mean ms | best ms | pairs/s | compile + warm-up ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, f := range r.Forward {
		fmt.Fprintf(w, "| %d | %d | %.3f | %.3f | %.0f | %.0f |\n", f.Batch, f.Seq, f.MeanMS, f.BestMS, f.PairsPerSec, f.CompileMS)
	}
}
