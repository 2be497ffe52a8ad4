//go:build darwin && cgo

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/metal"
)

// forwardTiming is the whole-model forward time of one compiled bucket,
// GPU completion included (a forward returns after the command buffer
// completes).
type forwardTiming struct {
	Batch, Seq     int
	Iters          int
	MeanMS, BestMS float64
}

// benchForward loads the native weights file at path on the Metal backend
// (f16: the fp16 precision) with the default buckets, or with buckets
// ("BxS,..."; its longest seq must be the model's max_seq) when not empty,
// and times iters forward passes per bucket on full rows of seeded random
// token ids after one untimed pass. It returns the load stats with the
// timings; a missing device is metal.ErrNoDevice (wrapped). Cost: the model
// load compiles every bucket (seconds), then iters forward passes per
// bucket.
func benchForward(path string, f16 bool, buckets string, iters int) (metal.Stats, []forwardTiming, error) {
	if iters < 1 {
		return metal.Stats{}, nil, fmt.Errorf("metal: bench forward: iters %d, want at least 1", iters)
	}
	prec := native.PrecisionF32
	if f16 {
		prec = native.PrecisionF16
	}
	be, err := native.Lookup("metal")
	if err != nil {
		return metal.Stats{}, nil, err
	}
	m, err := be.Load(path, native.Options{Precision: prec, Buckets: buckets})
	if err != nil {
		var ne *native.Error
		if errors.As(err, &ne) && ne.Code == native.CodeDevice && strings.Contains(ne.Msg, "no usable Metal device") {
			return metal.Stats{}, nil, fmt.Errorf("%w (%s)", metal.ErrNoDevice, ne.Msg)
		}
		return metal.Stats{}, nil, err
	}
	defer m.Close()
	stats, err := metal.ModelStats(m.Handle())
	if err != nil {
		return metal.Stats{}, nil, err
	}
	ctx, err := m.NewContext(0)
	if err != nil {
		return metal.Stats{}, nil, err
	}
	defer ctx.Close()
	r := rand.New(rand.NewPCG(1, 2))
	vocab := int32(m.Info().Config.VocabSize)
	logits := make([]float32, m.Info().MaxBatch*m.Info().NumLabels)
	var out []forwardTiming
	for _, b := range stats.Buckets {
		t, err := timeBucket(ctx, b, r, vocab, iters, logits)
		if err != nil {
			return metal.Stats{}, nil, fmt.Errorf("metal: bench forward %dx%d: %w", b.Batch, b.Seq, err)
		}
		out = append(out, t)
	}
	return stats, out, nil
}

// timeBucket times iters forwards of bucket b's shape on full rows of random
// ids below vocab (types 0 then 1), after one untimed forward.
func timeBucket(ctx *native.Context, b metal.Bucket, r *rand.Rand, vocab int32, iters int, logits []float32) (forwardTiming, error) {
	n := b.Batch * b.Seq
	ids, types, lengths := make([]int32, n), make([]int32, n), make([]int32, b.Batch)
	for i := range ids {
		ids[i] = r.Int32N(vocab)
		if i%b.Seq >= b.Seq/2 {
			types[i] = 1
		}
	}
	for i := range lengths {
		lengths[i] = int32(b.Seq)
	}
	t := forwardTiming{Batch: b.Batch, Seq: b.Seq, Iters: iters}
	if err := ctx.Forward(b.Batch, b.Seq, ids, types, lengths, logits); err != nil {
		return t, err
	}
	var total time.Duration
	best := time.Duration(1<<63 - 1)
	for range iters {
		t0 := time.Now()
		if err := ctx.Forward(b.Batch, b.Seq, ids, types, lengths, logits); err != nil {
			return t, err
		}
		d := time.Since(t0)
		total += d
		best = min(best, d)
	}
	t.MeanMS = float64(total) / float64(iters) / 1e6
	t.BestMS = float64(best) / 1e6
	return t, nil
}
