package metal

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Without the Metal backend both figures are NaN with an "n/a (reason)" text
// that names the platform; on darwin with cgo, gpu_darwin_test.go checks the
// real readings.
func TestGPUUsageWithoutMetal(t *testing.T) {
	if runtime.GOOS == "darwin" && metalBuilt {
		t.Skip("the Metal backend is built here: gpu_darwin_test.go checks GPUUsage")
	}
	t.Parallel()
	s := GPUUsage()
	assert.True(t, math.IsNaN(s.MemoryMB), "memory NaN")
	assert.True(t, math.IsNaN(s.UtilizationPct), "utilization NaN")
	for _, na := range []string{s.MemoryNA, s.UtilizationNA} {
		assert.True(t, strings.HasPrefix(na, "n/a (") && strings.HasSuffix(na, ")"), "%q", na)
		assert.Contains(t, na, runtime.GOOS)
	}
}
