//go:build !darwin || !cgo

package metal

import (
	"math"
	"runtime"
)

// GPUUsage on a build without the Metal backend: both figures NaN, and the
// reasons say why.
func GPUUsage() GPUSample {
	why := "n/a (no Metal backend in this build: " + runtime.GOOS + ", cgo off)"
	if runtime.GOOS != "darwin" {
		why = "n/a (no Metal backend on " + runtime.GOOS + ")"
	}
	return GPUSample{MemoryMB: math.NaN(), UtilizationPct: math.NaN(), MemoryNA: why, UtilizationNA: why}
}
