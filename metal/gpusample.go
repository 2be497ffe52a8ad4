package metal

// GPUSample is one reading of the GPU rows of the bench report (GPUUsage).
// A figure that cannot be read is NaN, and its NA field holds the text the
// report prints instead, "n/a (reason)"; an NA field is "" exactly when its
// figure is a number.
type GPUSample struct {
	MemoryMB       float64 // MTLDevice.currentAllocatedSize, MB of 2^20 bytes
	UtilizationPct float64 // always NaN: Metal has no public utilization API
	MemoryNA       string
	UtilizationNA  string
}
