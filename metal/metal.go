//go:build darwin && cgo

package metal

/*
#cgo CFLAGS: -fobjc-arc -I${SRCDIR}/../kernels -I${SRCDIR}/../kernels/metal -mmacosx-version-min=13.0 -Wall -Wextra -Wno-unused-parameter
#cgo LDFLAGS: -framework Foundation -framework Metal -framework MetalPerformanceShaders -framework MetalPerformanceShadersGraph
#include <stdlib.h>
#include "gomps-metal.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	kmetal "github.com/gomps/gomps/kernels/metal"
	// the native weights reader (gomps_wfile_open), compiled by cgo there
	_ "github.com/gomps/gomps/kernels/wfile"
)

func init() {
	src := kmetal.Source()
	cs := C.CString(src)
	defer C.free(unsafe.Pointer(cs))
	C.gomps_metal_set_shader_source(cs, C.size_t(len(src)))
}

// ErrNoDevice reports that this Mac has no Metal device that Metal
// Performance Shaders supports (hosted CI runners, for example).
var ErrNoDevice = errors.New("metal: no usable Metal device")

// Stats describes a loaded model's compile work (gomps_metal_stats).
type Stats struct {
	LoadMS, CompileMS float64
	Buckets           []Bucket
	WeightsZeroCopy   bool
	EmbedKernel       bool
	// Kernels lists the kernels selected into the forward pass
	// (GOMPS_METAL_KERNELS), in the order embed, layer_norm, softmax,
	// bias_gelu; empty for the pure MPSGraph path.
	Kernels []string
	// Segments is the number of MPSGraph executables one forward of a
	// bucket encodes (1 without layer kernels), KernelSteps the number of
	// kernel dispatches between them.
	Segments, KernelSteps int
	LockedEncode          bool
}

// Bucket is one compiled (batch, seq) shape and its compile + warm-up time.
type Bucket struct {
	Batch, Seq int
	MS         float64
}

// ModelStats reads the stats of a model this backend loaded; model is its
// handle (native.Model.Handle).
func ModelStats(model unsafe.Pointer) (Stats, error) {
	var s C.gomps_metal_stats
	if st := C.gomps_metal_model_stats((*C.gomps_model_t)(model), &s); st != C.GOMPS_OK {
		return Stats{}, fmt.Errorf("metal: model stats: status %d", int(st))
	}
	out := Stats{
		LoadMS:          float64(s.load_ms),
		CompileMS:       float64(s.compile_ms),
		WeightsZeroCopy: s.weights_zero_copy != 0,
		EmbedKernel:     s.kernels&C.GOMPS_METAL_KERNEL_EMBED != 0,
		LockedEncode:    s.locked_encode != 0,
		Segments:        int(s.segments),
		KernelSteps:     int(s.kernel_steps),
	}
	for i, name := range []string{"embed", "layer_norm", "softmax", "bias_gelu"} {
		if s.kernels&(1<<i) != 0 {
			out.Kernels = append(out.Kernels, name)
		}
	}
	for i := 0; i < int(s.n_buckets); i++ {
		out.Buckets = append(out.Buckets, Bucket{int(s.bucket_batch[i]), int(s.bucket_seq[i]), float64(s.bucket_ms[i])})
	}
	return out, nil
}

// KernelName is the library name of op's kernel for a dtype: <op>_f32 or
// <op>_f16 (the one host-side builder, gomps_metal_kernel_name).
func KernelName(op string, f16 bool) string {
	cop := C.CString(op)
	defer C.free(unsafe.Pointer(cop))
	var buf [64]C.char
	n := C.gomps_metal_kernel_name(&buf[0], C.size_t(len(buf)), cop, precision(f16), nil)
	if n < 0 || int(n) >= len(buf) {
		return ""
	}
	return C.GoString(&buf[0])
}

func precision(f16 bool) C.int32_t {
	if f16 {
		return C.GOMPS_PRECISION_F16
	}
	return C.GOMPS_PRECISION_F32
}

// OpResult compares one op run as our Metal kernel and as MPSGraph.
type OpResult struct {
	KernelMS, GraphMS float64 // mean per iteration, GPU completion included
	MaxAbsDiff, NMSE  float64 // kernel output against the graph's
}

// CompareOp runs op ("embed", "layer_norm", "masked_softmax", "bias_gelu")
// on rows x cols seeded random inputs both ways, iters timed iterations each
// after one warm-up. It returns ErrNoDevice (wrapped) when there is no
// usable device.
func CompareOp(op string, f16 bool, rows, cols, iters int) (OpResult, error) {
	cop := C.CString(op)
	defer C.free(unsafe.Pointer(cop))
	var r C.gomps_metal_op_result
	var errBuf [1024]C.char
	st := C.gomps_metal_op_compare(cop, precision(f16), C.int32_t(rows), C.int32_t(cols), C.int32_t(iters), &r,
		&errBuf[0], C.size_t(len(errBuf)))
	if st != C.GOMPS_OK {
		msg := C.GoString(&errBuf[0])
		if st == C.GOMPS_ERR_DEVICE && len(msg) >= len("metal: op_compare: no usable Metal device") &&
			msg == "metal: op_compare: no usable Metal device" {
			return OpResult{}, fmt.Errorf("%w (%s)", ErrNoDevice, msg)
		}
		return OpResult{}, fmt.Errorf("%s (status %d)", msg, int(st))
	}
	return OpResult{float64(r.kernel_ms), float64(r.graph_ms), float64(r.max_abs_diff), float64(r.nmse)}, nil
}
