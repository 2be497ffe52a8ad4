//go:build darwin && cgo

package metal

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
)

// GPU memory is the device's currentAllocatedSize: a model's weight buffers
// and compiled buckets must raise it. Utilization stays n/a with its reason.
func TestGPUUsageCountsModel(t *testing.T) {
	before := GPUUsage()
	assert.True(t, math.IsNaN(before.UtilizationPct), "utilization has no public API")
	assert.Equal(t, utilizationNA, before.UtilizationNA)
	m, err := loadModel(tinyModel(t, weights.F32), precF32, 4, 0, tinyBuckets)
	skipIfNoDevice(t, err)
	require.NoError(t, err)
	defer m.close()
	require.Empty(t, before.MemoryNA, "with a device, memory is readable")
	after := GPUUsage()
	require.Empty(t, after.MemoryNA)
	assert.Greater(t, after.MemoryMB, before.MemoryMB, "a loaded model allocates on the device")
}
