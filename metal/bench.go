//go:build darwin && cgo

package metal

/*
#include "gomps-metal.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// ForwardTiming is the whole-model forward time of one compiled bucket,
// GPU completion included (gomps_context_forward returns after the command
// buffer completes).
type ForwardTiming struct {
	Batch, Seq     int
	Iters          int
	MeanMS, BestMS float64
}

// BenchForward loads the native weights file at path (f16: the fp16
// precision) with the default buckets, or with buckets ("BxS,..."; its
// longest seq must be the model's max_seq) when not empty, and times iters
// forward passes per bucket on full rows of seeded random token ids after
// one untimed pass. It returns the load stats with the timings; a missing
// device is ErrNoDevice (wrapped). Cost: the model load compiles every
// bucket (seconds), then iters forward passes per bucket.
func BenchForward(path string, f16 bool, buckets string, iters int) (Stats, []ForwardTiming, error) {
	if iters < 1 {
		return Stats{}, nil, fmt.Errorf("metal: bench forward: iters %d, want at least 1", iters)
	}
	prec := 0
	if f16 {
		prec = int(C.GOMPS_PRECISION_F16)
	}
	m, err := loadModel(path, prec, 0, 0, buckets)
	if err != nil {
		var ae *abiError
		if errors.As(err, &ae) && ae.status == int(C.GOMPS_ERR_DEVICE) && strings.Contains(ae.msg, "no usable Metal device") {
			return Stats{}, nil, fmt.Errorf("%w (%s)", ErrNoDevice, ae.msg)
		}
		return Stats{}, nil, err
	}
	defer m.close()
	var info C.gomps_model_info
	info.struct_size = C.uint32_t(C.sizeof_gomps_model_info)
	if st := C.gomps_model_info_get(m.p, &info); st != C.GOMPS_OK {
		return Stats{}, nil, fmt.Errorf("metal: bench forward: model info: status %d", int(st))
	}
	stats, err := m.stats()
	if err != nil {
		return Stats{}, nil, err
	}
	ctx, err := m.newContext()
	if err != nil {
		return Stats{}, nil, err
	}
	defer ctx.close()
	r := rand.New(rand.NewPCG(1, 2))
	vocab := int32(info.vocab_size)
	var out []ForwardTiming
	for _, b := range stats.Buckets {
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
		if _, err := ctx.forward(b.Batch, b.Seq, ids, types, lengths); err != nil {
			return Stats{}, nil, fmt.Errorf("metal: bench forward %dx%d: %w", b.Batch, b.Seq, err)
		}
		t := ForwardTiming{Batch: b.Batch, Seq: b.Seq, Iters: iters}
		var total time.Duration
		best := time.Duration(1<<63 - 1)
		for range iters {
			t0 := time.Now()
			if _, err := ctx.forward(b.Batch, b.Seq, ids, types, lengths); err != nil {
				return Stats{}, nil, fmt.Errorf("metal: bench forward %dx%d: %w", b.Batch, b.Seq, err)
			}
			d := time.Since(t0)
			total += d
			best = min(best, d)
		}
		t.MeanMS = float64(total) / float64(iters) / 1e6
		t.BestMS = float64(best) / 1e6
		out = append(out, t)
	}
	return stats, out, nil
}
