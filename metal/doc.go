// Package metal is the Metal/MPSGraph backend of gomps.
//
// On darwin with cgo, importing it compiles the Objective-C and C files in
// this directory, which implement the native ABI (kernels/gomps.h) as the
// table gomps_backend_metal returns, and hands the embedded shader library
// (package kernels/metal) to them; the binding (kernels/native) imports it
// for that and calls the table like any backend's. It also has a few
// Metal-only helpers (ModelStats of a loaded model's handle, CompareOp,
// GPUUsage) declared in gomps-metal.h, which is not part of the ABI.
//
// On every other platform, or without cgo, the package holds only plain Go
// (Ops, OpBytes), so `go build ./...` and `go vet ./...` work anywhere. What Linux can check of
// this code, tools/check-metal.sh checks; metal/README.md says what still
// needs a Mac.
package metal
