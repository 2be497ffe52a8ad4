//go:build darwin && cgo

package metal_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/metal"
	"github.com/gomps/gomps/weights"
)

// GPU memory is the device's currentAllocatedSize: a model's weight buffers
// and compiled buckets must raise it. Utilization stays n/a with its reason.
func TestGPUUsageCountsModel(t *testing.T) {
	before := metal.GPUUsage()
	assert.True(t, math.IsNaN(before.UtilizationPct), "utilization has no public API")
	assert.Equal(t, "n/a (Metal has no public API for GPU utilization)", before.UtilizationNA)
	m, err := loadModel(tinyModel(t, weights.F32), precF32, 4, 0, tinyBuckets)
	skipIfNoDevice(t, err)
	require.NoError(t, err)
	defer m.Close()
	require.Empty(t, before.MemoryNA, "with a device, memory is readable")
	after := metal.GPUUsage()
	require.Empty(t, after.MemoryNA)
	assert.Greater(t, after.MemoryMB, before.MemoryMB, "a loaded model allocates on the device")
}
