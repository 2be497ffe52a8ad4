//go:build darwin && cgo

package metal

// metalBuilt reports that this build holds the Metal backend.
const metalBuilt = true
