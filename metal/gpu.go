//go:build darwin && cgo

package metal

/*
#include "gomps-metal.h"
*/
import "C"

import "math"

// utilizationNA is why GPU utilization is not reported on Metal either: the
// only sources are powermetrics (root) and undocumented IORegistry keys.
const utilizationNA = "n/a (Metal has no public API for GPU utilization)"

// GPUUsage reads the GPU rows of the bench report now: MemoryMB is
// MTLDevice.currentAllocatedSize of the system default device (the one the
// backend uses) in MB of 2^20 bytes, everything this process has allocated
// there (weights, I/O buffers, MPSGraph's intermediates). Utilization has no
// public Metal API, so UtilizationPct is always NaN with its reason. Cheap
// (no GPU work); any goroutine.
func GPUUsage() GPUSample {
	s := GPUSample{MemoryMB: math.NaN(), UtilizationPct: math.NaN(), UtilizationNA: utilizationNA}
	var b C.uint64_t
	var errBuf [256]C.char
	if st := C.gomps_metal_gpu_allocated(&b, &errBuf[0], C.size_t(len(errBuf))); st != C.GOMPS_OK {
		s.MemoryNA = "n/a (" + C.GoString(&errBuf[0]) + ")"
		return s
	}
	s.MemoryMB = float64(b) / (1 << 20)
	return s
}
